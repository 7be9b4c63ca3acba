"""Alembic migrations for moksori's database; a package so that they ship with it."""
