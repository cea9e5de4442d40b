"""Secrets at rest: encrypted with Fernet under ATLAS_ENCRYPTION_KEY, decrypted only when they are used."""
from cryptography.fernet import Fernet
from flask import current_app


def _fernet() -> Fernet:
    """The app's Fernet (the key is checked at start-up)."""
    return Fernet(current_app.config["ATLAS_ENCRYPTION_KEY"])


def encrypt(plain: str) -> str:
    """The token that stores `plain`."""
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text a token stores."""
    return _fernet().decrypt(token.encode()).decode()
