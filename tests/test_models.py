"""The declarative models: they describe the tables as they are, read a synced order whole, and stay
out of synclet's own runs (the ORM's import is a tenth of a second or more of every cron run)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synclet import db, tables
from synclet.models import Base, Order
from synclet.sandbox import Sandbox

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
MODELS = {mapper.class_.__name__: mapper.class_ for mapper in Base.registry.mappers}


def column_annotations(model: type) -> dict[str, str]:
    """``name: Mapped[...]`` of the class itself, relationships (``Mapped[list[...]]``) left out."""
    return {name: kind for name, kind in model.__annotations__.items()
            if kind.startswith("Mapped[") and not kind.startswith("Mapped[list[")}


def test_every_table_has_a_model() -> None:
    assert {model.__table__.name for model in MODELS.values()} == set(tables.metadata.tables)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_annotates_each_column_of_its_table_with_its_nullability(name: str) -> None:
    model = MODELS[name]
    annotations = column_annotations(model)
    columns = model.__table__.columns
    assert list(annotations) == list(columns.keys())
    assert {column: kind.endswith(" | None]") for column, kind in annotations.items()} == \
        {column.name: column.nullable and not column.primary_key for column in columns}


def test_the_models_read_a_synced_order_whole(database_url: str) -> None:
    with Sandbox(orders=60, seed=5, now=datetime(2026, 3, 1)) as shop:
        result = run_cli("sync", env={**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 0, result.output
    engine = db.connect(database_url)
    with engine.connect() as conn:
        credited = conn.execute(select(tables.order_credits.c.order_id).limit(1)).scalar_one()
        item_count = conn.execute(select(func.count()).where(tables.order_items.c.order_id == credited)).scalar_one()
    with Session(engine) as session:
        order = session.get_one(Order, credited)
        assert order.source == "magento"
        assert [item.line_no for item in order.items] == list(range(1, item_count + 1))
        assert {address.address_type for address in order.addresses} <= {"billing", "shipping"}
        assert order.addresses
        assert order.credits and all(credit.order_id == order.id for credit in order.credits)


def test_synclet_runs_without_the_orm(tmp_path: Path) -> None:
    """A sync of every source and a status, each in a process of its own, never import the ORM."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    with Sandbox(orders=40, seed=6, now=datetime(2026, 3, 1)) as shop:
        env = {**os.environ, **shop.env(rest=True, valerdat=True), "DATABASE_URL": database_url, "LOG_FILE": ""}
        for command in (["sync"], ["status"]):
            done = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "synclet.py"), *command],
                                  cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
            assert "synclet.sync" in imported or command == ["status"]
            assert not {"sqlalchemy.orm", "synclet.models"} & imported, command
