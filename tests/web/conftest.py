"""Fixtures the page tests share."""
import pytest

from tests.web.test_pages import sign_in


@pytest.fixture
def staff_client(client, org, staff):
    """A test client signed in as a staff member of Iron Temple Gym."""
    sign_in(client, staff, org)
    return client
