"""GET /workflows: pagination, filters, search, sorting and their combinations; large responses are gzipped."""
import gzip
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from atlas.extensions import db
from tests import factories
from tests.api.helpers import validation

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
# name, status, category, tags, description, usage_count, last run (hours after T0) -- created an hour apart, in order
ROWS = [
    ("Alpha welcome", "active", "Leads", ["sms", "leads"], "Text new leads", 5, 10),
    ("beta win-back", "draft", "Retention", ["email"], "Members who stopped coming", 0, None),
    ("Gamma renewal", "paused", "Billing", ["email", "billing"], None, 12, 3),
    ("Delta 100% club", "active", "Retention", ["sms"], "Celebrate 100 classes", 7, None),
    ("Epsilon trial", "draft", None, [], "trial_class follow-up", 1, 30),
    ("Zeta old promo", "archived", "Leads", ["promo"], "Summer promo", 99, 50),
]


@pytest.fixture
def seeded(org, staff):
    """The rows above, with deterministic creation times and run statistics."""
    for i, (name, status, category, tags, description, usage, last_run) in enumerate(ROWS):
        workflow = factories.make_workflow(org, staff, name=name, category=category, tags=tags,
                                           description=description)
        workflow.status = status
        workflow.created_at = T0 + timedelta(hours=i)
        workflow.usage_count = usage
        workflow.last_run_at = T0 + timedelta(hours=last_run) if last_run is not None else None
    db.session.commit()


@pytest.fixture
def names(client, staff_headers, seeded):
    """GET /workflows with this query string; returns the names on the page."""

    def get(query=""):
        response = client.get(f"/api/v2/workflows?{query}", headers=staff_headers)
        assert response.status_code == 200, response.json
        return [w["name"] for w in response.json["workflows"]]

    return get


def test_default_is_newest_first_without_archived(names):
    assert names() == ["Epsilon trial", "Delta 100% club", "Gamma renewal", "beta win-back", "Alpha welcome"]


def test_summaries_have_the_seed_s_fields(client, staff_headers, seeded):
    summary = client.get("/api/v2/workflows?limit=1", headers=staff_headers).json["workflows"][0]

    assert set(summary) == {"id", "name", "description", "category", "status", "tags", "triggerType", "version",
                            "stepCount", "usageCount", "lastRunAt", "createdAt", "updatedAt"}
    assert (summary["stepCount"], summary["usageCount"]) == (2, 1)
    assert summary["lastRunAt"].startswith("2026-01-02T06:00:00")


@pytest.mark.parametrize("query, total, page, limit, total_pages, count", [
    ("", 5, 1, 20, 1, 5),
    ("limit=2", 5, 1, 2, 3, 2),
    ("limit=2&page=3", 5, 3, 2, 3, 1),
    ("limit=2&page=4", 5, 4, 2, 3, 0),
    ("limit=100", 5, 1, 100, 1, 5),
    ("status=archived", 1, 1, 20, 1, 1),
    ("category=Nothing", 0, 1, 20, 0, 0),
])
def test_pagination_block(client, staff_headers, seeded, query, total, page, limit, total_pages, count):
    body = client.get(f"/api/v2/workflows?{query}", headers=staff_headers).json

    assert body["pagination"] == {"total": total, "page": page, "limit": limit, "totalPages": total_pages}
    assert len(body["workflows"]) == count


def test_the_last_allowed_page_is_merely_empty(client, staff_headers, seeded):
    body = client.get("/api/v2/workflows?page=1000000&limit=100", headers=staff_headers).json

    assert body["workflows"] == [] and body["pagination"]["total"] == 5


def test_pages_do_not_overlap_and_cover_everything(names):
    pages = [names(f"limit=2&page={p}&sortBy=name&sortOrder=asc") for p in (1, 2, 3)]

    assert sum(pages, []) == names("sortBy=name&sortOrder=asc")


@pytest.mark.parametrize("query, field, message", [
    ("limit=101", "limit", "limit must be between 1 and 100."),
    ("limit=0", "limit", "limit must be between 1 and 100."),
    ("limit=ten", "limit", "Not a valid integer."),
    ("page=0", "page", "page must be between 1 and 1000000."),
    ("page=1000001", "page", "page must be between 1 and 1000000."),
    ("page=" + "9" * 30, "page", "page must be between 1 and 1000000."),  # no database offset overflow
    ("status=deleted", "status", "Must be one of: draft, active, paused, archived."),
    ("sortBy=popularity", "sortBy", "Must be one of: name, created_at, last_run_at, usage_count."),
    ("sortOrder=up", "sortOrder", "Must be one of: asc, desc."),
    ("search=" + "x" * 201, "search", "Longer than maximum length 200."),
])
def test_query_is_validated(client, staff_headers, query, field, message):
    assert validation(client.get(f"/api/v2/workflows?{query}", headers=staff_headers)) == {field: message}


@pytest.mark.parametrize("status, expected", [
    ("active", ["Delta 100% club", "Alpha welcome"]),
    ("draft", ["Epsilon trial", "beta win-back"]),
    ("paused", ["Gamma renewal"]),
    ("archived", ["Zeta old promo"]),
])
def test_status_filter(names, status, expected):
    assert names(f"status={status}") == expected


@pytest.mark.parametrize("query, expected", [
    ("category=Retention", ["Delta 100% club", "beta win-back"]),
    ("category=retention", []),  # categories match exactly
    ("category=Leads", ["Alpha welcome"]),  # the archived Leads workflow stays hidden
    ("category=Leads&status=archived", ["Zeta old promo"]),
])
def test_category_filter(names, query, expected):
    assert names(query) == expected


@pytest.mark.parametrize("search, expected", [
    ("WELCOME", ["Alpha welcome"]),  # name, any case
    ("members", ["beta win-back"]),  # description
    ("e", ["Epsilon trial", "Delta 100% club", "Gamma renewal", "beta win-back", "Alpha welcome"]),
    ("100%", ["Delta 100% club"]),  # % is literal
    ("trial_", ["Epsilon trial"]),  # _ is literal: matches "trial_class" in the description only
    ("a_", []),  # as a LIKE wildcard this would match almost everything
    ("promo", []),  # archived
    ("nothing like this", []),
])
def test_search_in_name_and_description(names, search, expected):
    assert names(f"search={quote(search)}") == expected


@pytest.mark.parametrize("tags, expected", [
    ("sms", ["Delta 100% club", "Alpha welcome"]),
    ("email,billing", ["Gamma renewal", "beta win-back"]),  # any of them, each workflow once
    ("leads,billing", ["Gamma renewal", "Alpha welcome"]),
    ("promo", []),
    ("unknown", []),
])
def test_tags_match_any_of(names, tags, expected):
    assert names(f"tags={tags}") == expected


@pytest.mark.parametrize("sort_by, order, expected", [
    ("name", "asc", ["Alpha welcome", "beta win-back", "Delta 100% club", "Epsilon trial", "Gamma renewal"]),
    ("name", "desc", ["Gamma renewal", "Epsilon trial", "Delta 100% club", "beta win-back", "Alpha welcome"]),
    ("created_at", "asc", ["Alpha welcome", "beta win-back", "Gamma renewal", "Delta 100% club", "Epsilon trial"]),
    ("usage_count", "desc", ["Gamma renewal", "Delta 100% club", "Alpha welcome", "Epsilon trial", "beta win-back"]),
    ("usage_count", "asc", ["beta win-back", "Epsilon trial", "Alpha welcome", "Delta 100% club", "Gamma renewal"]),
    # never-run workflows come last in either direction
    ("last_run_at", "desc", ["Epsilon trial", "Alpha welcome", "Gamma renewal"]),
    ("last_run_at", "asc", ["Gamma renewal", "Alpha welcome", "Epsilon trial"]),
])
def test_sorting(names, sort_by, order, expected):
    result = names(f"sortBy={sort_by}&sortOrder={order}")

    assert result[:len(expected)] == expected
    if sort_by == "last_run_at":
        assert sorted(result[3:]) == ["Delta 100% club", "beta win-back"]


def test_sort_order_defaults_to_descending(names):
    assert names("sortBy=usage_count")[0] == "Gamma renewal"


@pytest.mark.parametrize("query, expected", [
    ("status=active&tags=sms&sortBy=name&sortOrder=asc", ["Alpha welcome", "Delta 100% club"]),
    ("status=active&tags=sms&sortBy=name&sortOrder=asc&limit=1&page=2", ["Delta 100% club"]),
    ("category=Retention&search=club", ["Delta 100% club"]),
    ("tags=email,sms&search=e&sortBy=usage_count&sortOrder=asc&limit=3",
     ["beta win-back", "Alpha welcome", "Delta 100% club"]),
    ("status=draft&category=Retention&tags=email", ["beta win-back"]),
    ("status=paused&tags=sms", []),
])
def test_filters_combine(names, query, expected):
    assert names(query) == expected


def test_filters_block_lists_what_the_organization_uses(client, staff_headers, seeded):
    filters = client.get("/api/v2/workflows?status=active", headers=staff_headers).json["filters"]

    # "promo" is only on the archived workflow, so it is not offered: picking it would match nothing by default.
    assert filters == {"categories": ["Billing", "Leads", "Retention"],
                       "tags": ["billing", "email", "leads", "sms"],
                       "statuses": ["draft", "active", "paused", "archived"]}


def test_an_empty_organization_lists_nothing(client, staff_headers):
    body = client.get("/api/v2/workflows", headers=staff_headers).json

    assert body == {"workflows": [], "pagination": {"total": 0, "page": 1, "limit": 20, "totalPages": 0},
                    "filters": {"categories": [], "tags": [], "statuses": []}}


def test_large_responses_are_gzipped(client, org, staff, staff_headers):
    for i in range(30):
        factories.make_workflow(org, staff, name=f"Workflow number {i}", description="A description " * 5)

    plain = client.get("/api/v2/workflows?limit=30", headers=staff_headers)
    zipped = client.get("/api/v2/workflows?limit=30", headers={**staff_headers, "Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) < len(plain.get_data()) / 3
    assert json.loads(gzip.decompress(zipped.get_data())) == plain.json


def test_small_responses_are_not_compressed(client, staff_headers):
    response = client.get("/api/v2/workflows/nope", headers={**staff_headers, "Accept-Encoding": "gzip"})

    assert response.status_code == 404 and "Content-Encoding" not in response.headers
