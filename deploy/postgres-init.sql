-- The events and the read models live in separate schemas of one database.
CREATE SCHEMA IF NOT EXISTS events AUTHORIZATION ledger;
CREATE SCHEMA IF NOT EXISTS views AUTHORIZATION ledger;
