"""The domain core: pure Python, no Flask, SQLAlchemy, Redis or RQ (tests/core guards this)."""
