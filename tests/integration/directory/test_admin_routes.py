"""The gateway's administration, organisation and relationship routes over a real broker and directory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway.app import create_app
from services.directory.handlers import methods
from shared.auth import issue_token
from shared.config import Settings
from shared.rpc import RpcServer
from tests.integration.directory.conftest import Directory

DISTRICT_ADMIN = "user-a-000"
SECONDARY_PRINCIPAL = "user-a-002"
TEACHER = "user-t-001"
STUDENT = "user-s-0001"


class Api:
    def __init__(self, client: FlaskClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def __call__(self, method: str, path: str, user: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {issue_token(self.settings, user)}"}
        return self.client.open(f"/api/v1{path}", method=method, json=body, headers=headers)


@pytest.fixture
def api(directory: Directory, db: Settings) -> Iterator[Api]:
    server = RpcServer(db, "directory", methods(db), threads=2).start()
    app = create_app(db)
    try:
        yield Api(app.test_client(), db)
    finally:
        app.extensions["rpc"].close()
        server.stop()


def test_an_administrator_blocks_lists_and_lifts_messaging_over_http(api: Api, directory: Directory) -> None:
    made = api("POST", "/admin/messaging-blocks", SECONDARY_PRINCIPAL, {"user_id": STUDENT})
    assert made.status_code == 201
    assert made.json["target_id"] == STUDENT
    again = api("POST", "/admin/messaging-blocks", SECONDARY_PRINCIPAL, {"user_id": STUDENT})
    assert again.status_code == 200 and again.json["id"] == made.json["id"]
    listed = api("GET", "/admin/messaging-blocks", DISTRICT_ADMIN)
    assert [b["id"] for b in listed.json["items"]] == [made.json["id"]]
    gone = api("DELETE", f"/admin/messaging-blocks/{made.json['id']}", SECONDARY_PRINCIPAL)
    assert gone.status_code == 204
    assert directory.scalar("SELECT count(*) FROM messaging_blocks") == 0


@pytest.mark.parametrize(
    ("user", "body", "status", "code"),
    [
        (TEACHER, {"user_id": STUDENT}, 403, "forbidden"),
        (DISTRICT_ADMIN, {"user_id": STUDENT, "org_id": "org-school-2"}, 422, "validation_failed"),
        (DISTRICT_ADMIN, {}, 422, "validation_failed"),
        (DISTRICT_ADMIN, {"user": STUDENT}, 422, "validation_failed"),
        (DISTRICT_ADMIN, {"user_id": 1}, 422, "validation_failed"),
        (DISTRICT_ADMIN, {"course_id": "class-999"}, 404, "not_found"),
    ],
)
def test_a_refused_block_answers_with_the_error_shape_and_changes_nothing(
    api: Api, directory: Directory, user: str, body: dict[str, Any], status: int, code: str
) -> None:
    before = directory.state()
    response = api("POST", "/admin/messaging-blocks", user, body)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert directory.state() == before


def test_an_administrator_sets_and_reads_a_communication_rule_over_http(api: Api) -> None:
    path = "/admin/communication-rules/org-school-2"
    assert api("PUT", path, SECONDARY_PRINCIPAL, {"student_policy": "courses"}).json["effective_policy"] == "courses"
    assert api("GET", path, TEACHER).json["student_policy"] == "courses"
    refused = api("PUT", path, SECONDARY_PRINCIPAL, {"student_policy": "everyone"})
    assert refused.status_code == 422
    assert api("PUT", path, TEACHER, {"student_policy": "anyone"}).status_code == 403
    assert api("PUT", path, SECONDARY_PRINCIPAL, {}).status_code == 422


def test_privileges_are_granted_and_revoked_over_http(api: Api, directory: Directory) -> None:
    body = {"user_id": SECONDARY_PRINCIPAL, "privilege": "mass_messaging"}
    assert api("POST", "/admin/privileges", DISTRICT_ADMIN, body).json["granted"] is True
    assert directory("privileges.check", body)["granted"] is True
    revoked = api("DELETE", f"/admin/privileges/{SECONDARY_PRINCIPAL}/mass_messaging", DISTRICT_ADMIN)
    assert revoked.status_code == 204
    assert directory("privileges.check", body)["granted"] is False
    assert api("POST", "/admin/privileges", TEACHER, body).status_code == 403


def test_the_organisation_tree_and_a_relationship_are_served(api: Api) -> None:
    orgs = api("GET", "/orgs", TEACHER).json["orgs"]
    assert orgs[0]["id"] == "org-district"
    found = api("GET", f"/users/{STUDENT}/relationship", TEACHER).json
    assert found["summary"][0] == "You are the teacher in Math 9B"
    assert api("GET", f"/users/{STUDENT}/relationship", "user-a-001").status_code == 404
