"""The systems synclet delivers stored orders to. A destination knows its API and its body shape;
it never touches the database: ``synclet.push`` reads the stored orders and drives it."""
