"""The web client (F30) in a real browser: Debian's Chromium driven by Playwright against the whole system.

A teacher and a student, each in a browser context of their own, write to each other through the UI
and see each other's changes live; files go up and come down; the teacher moderates and closes a
course conversation; an admin sends a mass message; user text never becomes markup; the main screens
pass axe-core's serious and critical checks, and are saved as screenshots under tests/artifacts/.

These contexts run under the page's own Content-Security-Policy (a violation fails the test).
axe-core goes in as an inline script, which that policy forbids, so the accessibility checks (and
the one look at user text without the policy's safety net) use contexts that bypass it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config import Settings
from tests.e2e.browser import Client, Tabs, chromium, describe, expect
from tests.e2e.conftest import System, running_system
from tests.support.files import ELF, png

TEACHER, STUDENT, CLASSMATE = "user-t-001", "user-s-0001", "user-s-0013"
ADMIN, DISTRICT_ADMIN = "user-a-002", "user-a-000"
TEACHER_NAME, STUDENT_NAME = "Amara Tuilagi", "Javier Kowalski"
COURSE = "class-001"  # Math 9B: TEACHER teaches it, STUDENT and CLASSMATE are in it
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def system(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    blobs = tmp_path_factory.mktemp("blobs")
    with running_system(base_settings, tmp_path_factory.mktemp("logs"), blob_dir=str(blobs)) as running:
        granted = running.session(DISTRICT_ADMIN).post(
            f"{running.api}/admin/privileges", json={"user_id": ADMIN, "privilege": "mass_messaging"}, timeout=15
        )
        assert granted.status_code == 200, granted.text
        yield running


@pytest.fixture(scope="module")
def clients(system: System) -> Iterator[Tabs]:
    """One browser for the module; a browser context per user (see `Tabs`)."""
    with chromium() as browser:
        tabs = Tabs(browser, system.api.removesuffix("/api/v1"))
        yield tabs
        tabs.close()


@pytest.fixture(autouse=True)
def nothing_went_wrong(clients: Tabs) -> Iterator[None]:
    """After each test: no alert() or other dialog fired, no CSP violation, no uncaught error in any tab."""
    yield
    problems = clients.take_problems()
    assert not problems, "\n".join(problems)


def ok(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def direct_conversation(system: System) -> str:
    """The student's 1:1 with the teacher (the first test starts it through the UI)."""
    mine = ok(system.session(STUDENT).get(f"{system.api}/conversations", params={"limit": 100}, timeout=15))
    for conversation in mine["items"]:
        if conversation["type"] == "direct" and conversation["name"] == TEACHER_NAME:
            return conversation["id"]
    started = system.session(STUDENT).post(
        f"{system.api}/conversations", json={"recipients": [{"type": "user", "id": TEACHER}], "body": "Hi"}, timeout=15
    )
    return ok(started, 201)["conversation"]["id"]


def progress_full(progress: Any) -> bool:
    return progress.evaluate("(p) => p.max > 0 && p.value === p.max")


# 1 ---------------------------------------------------------------------------------------------


def test_a_new_message_from_the_student_reaches_the_teachers_badge_and_list_live(system: System, clients: Tabs) -> None:
    teacher, student = clients(TEACHER), clients(STUDENT)
    teacher.open_panel()
    expect(teacher.badge).to_be_hidden()
    teacher.page.evaluate("() => { window.stillTheSamePage = true; }")  # gone if the page reloads

    # The student writes through "New message": find the teacher, pick them, write, send.
    student.open_panel()
    student.page.get_by_test_id("new-message-button").click()
    form = student.page.get_by_test_id("new-message")
    form.get_by_role("combobox", name="Add recipients").fill("Tuilagi")
    form.locator(f'[data-testid=recipient-option][data-id="{TEACHER}"]').click()
    expect(form.get_by_test_id("recipient-chip")).to_have_count(1)
    expect(form.get_by_test_id("recipient-chip")).to_have_attribute("data-id", TEACHER)
    expect(form.get_by_test_id("preview-summary")).to_have_text(f"A 1:1 conversation with {TEACHER_NAME}.")
    form.get_by_role("textbox", name="Write message", exact=True).fill("Could you explain question 4 again?")
    form.get_by_role("button", name="Send", exact=True).click()

    # The sender lands in the new conversation.
    view = student.page.get_by_test_id("conversation-view")
    expect(view).to_have_attribute("data-type", "direct")
    expect(view.get_by_test_id("conversation-title")).to_have_text(TEACHER_NAME)
    expect(student.message_with("Could you explain question 4 again?")).to_have_count(1)
    cid = view.get_attribute("data-id")
    assert cid

    # The teacher's badge and list change without a reload.
    expect(teacher.badge).to_be_visible()
    expect(teacher.badge).to_have_text("1")
    item = teacher.item(cid)
    expect(item).to_have_attribute("data-type", "direct")
    expect(item.get_by_test_id("conversation-name")).to_have_text(STUDENT_NAME)
    expect(item.get_by_test_id("conversation-preview")).to_have_text("Could you explain question 4 again?")
    expect(item.get_by_test_id("unread-count")).to_have_text("1")
    expect(teacher.page.get_by_test_id("conversation-item").first).to_have_attribute("data-id", cid)
    expect(teacher.page).to_have_title("(1) Messages")

    # Opening it reads it: the badge and the item's count clear.
    teacher.open_conversation(cid)
    expect(teacher.message_with("Could you explain question 4 again?")).to_have_count(1)
    expect(teacher.badge).to_be_hidden()
    expect(item.get_by_test_id("unread-count")).to_be_hidden()
    expect(teacher.page).to_have_title("Messages")
    assert teacher.page.evaluate("() => window.stillTheSamePage === true"), "the teacher's page reloaded"


# 2 ---------------------------------------------------------------------------------------------


def test_an_edit_and_a_delete_show_live_in_the_other_context(system: System, clients: Tabs) -> None:
    cid = direct_conversation(system)
    teacher, student = clients(TEACHER), clients(STUDENT)
    student.open_conversation(cid)
    teacher.open_conversation(cid)
    mid = student.send("The test is on Thursday?")
    expect(teacher.message(mid).get_by_test_id("message-body")).to_have_text("The test is on Thursday?")
    expect(teacher.message(mid).get_by_test_id("message-edited")).to_have_count(0)

    student.message_menu(mid, "Edit")
    student.page.get_by_role("textbox", name="Edit message").fill("The test is on Friday?")
    student.page.get_by_test_id("edit-form").get_by_role("button", name="Save").click()
    for each in (student, teacher):
        expect(each.message(mid).get_by_test_id("message-body")).to_have_text("The test is on Friday?")
        expect(each.message(mid).get_by_test_id("message-edited")).to_have_text("Edited")

    student.message_menu(mid, "Delete message")
    student.confirm("Delete message")
    for each in (student, teacher):
        expect(each.message(mid).get_by_test_id("message-body")).to_have_text("This message was deleted")
        expect(each.message(mid).get_by_test_id("message-edited")).to_have_count(0)
        expect(each.message(mid).get_by_role("button", name="Message options")).to_have_count(0)
    expect(teacher.page.get_by_text("The test is on Friday?")).to_have_count(0)


# 3, 4 ------------------------------------------------------------------------------------------


def test_a_file_goes_up_with_progress_and_comes_down_byte_for_byte(
    system: System, clients: Tabs, tmp_path: Path
) -> None:
    cid = direct_conversation(system)
    teacher, student = clients(TEACHER), clients(STUDENT)
    student.open_conversation(cid)
    teacher.open_conversation(cid)
    picture = png()

    composer = student.page.get_by_test_id("composer")
    composer.get_by_label("Attach files").set_input_files(
        files=[{"name": "diagram.png", "mimeType": "image/png", "buffer": picture}]
    )
    upload = composer.get_by_test_id("upload")
    expect(upload).to_have_count(1)
    expect(upload).to_contain_text("diagram.png")
    expect(upload).to_have_class(re.compile(r"\bdone\b"))  # uploaded: its progress bar went to the end
    assert progress_full(upload.get_by_test_id("upload-progress"))
    composer.get_by_role("textbox").fill("Here is the diagram")
    composer.get_by_role("button", name="Send", exact=True).click()
    expect(composer.get_by_test_id("upload")).to_have_count(0)

    sent = teacher.message_with("Here is the diagram")
    expect(sent.get_by_test_id("attachment")).to_have_count(1)
    expect(sent.get_by_test_id("attachment-name")).to_have_text("diagram.png")
    with teacher.page.expect_download() as downloading:
        sent.get_by_test_id("attachment-download").click()
    download = downloading.value
    assert download.suggested_filename == "diagram.png"
    saved = tmp_path / "diagram.png"
    download.save_as(saved)
    assert saved.read_bytes() == picture


def test_an_unsupported_file_is_refused_with_the_apis_words(system: System, clients: Tabs) -> None:
    cid = direct_conversation(system)
    student = clients(STUDENT)
    view = student.open_conversation(cid)
    before = view.get_by_test_id("message").count()
    composer = student.page.get_by_test_id("composer")
    composer.get_by_label("Attach files").set_input_files(
        files=[{"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": ELF}]
    )
    alert = student.page.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_have_text("Sorry, you can't send tool.exe")
    expect(composer.get_by_test_id("upload")).to_have_count(0)
    expect(view.get_by_test_id("message")).to_have_count(before)


# 5, 6 ------------------------------------------------------------------------------------------


def test_the_teacher_removes_a_students_message_and_closes_the_course_conversation_live(
    system: System, clients: Tabs
) -> None:
    teacher, student = clients(TEACHER), clients(STUDENT)

    # The teacher starts the course conversation of Math 9B through "New message".
    teacher.open_panel()
    teacher.page.get_by_test_id("new-message-button").click()
    form = teacher.page.get_by_test_id("new-message")
    form.get_by_role("combobox", name="Add recipients").fill("Math 9B")
    form.locator(f'[data-testid=recipient-option][data-id="{COURSE}"]').click()
    expect(form.get_by_test_id("recipient-chip")).to_have_attribute("data-id", COURSE)
    expect(form.get_by_test_id("preview-summary")).not_to_be_empty()
    form.get_by_role("textbox", name="Write message", exact=True).fill("Welcome to Math 9B")
    form.get_by_role("button", name="Send", exact=True).click()
    view = teacher.page.get_by_test_id("conversation-view")
    expect(view).to_have_attribute("data-type", "course")
    expect(teacher.message_with("Welcome to Math 9B")).to_have_count(1)
    cid = view.get_attribute("data-id")
    assert cid

    # The student gets it live and writes there.
    expect(student.item(cid)).to_be_visible()
    student.open_conversation(cid)
    mid = student.send("this class is stupid")

    # 5: the teacher removes it as moderator; the student sees who removed it, live.
    expect(teacher.message(mid)).to_be_visible()
    teacher.message_menu(mid, "Delete message")
    teacher.confirm("Delete message")
    for each in (student, teacher):
        expect(each.message(mid).get_by_test_id("message-body")).to_have_text(
            f"This message was removed by {TEACHER_NAME}"
        )
    expect(student.page.get_by_text("this class is stupid")).to_have_count(0)

    # 6: the teacher closes the conversation; the student's composer turns off, live.
    composer = student.page.get_by_test_id("composer")
    expect(composer.get_by_role("textbox")).to_be_enabled()
    teacher.gear_menu("Close conversation")
    teacher.confirm("Close conversation")
    student_view = student.view(cid)
    expect(student_view).to_have_attribute("data-status", "closed")
    expect(student_view.get_by_test_id("conversation-status")).to_be_visible()
    expect(student_view.get_by_test_id("conversation-status")).to_have_text("Closed conversation")
    expect(composer.get_by_role("textbox")).to_be_disabled()
    expect(composer.get_by_role("textbox")).to_have_attribute("placeholder", "Closed conversation")
    expect(composer.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    expect(composer.get_by_label("Attach files")).to_be_disabled()
    expect(teacher.view(cid)).to_have_attribute("data-status", "closed")
    student.screenshot("closed-conversation")


# 7 ---------------------------------------------------------------------------------------------


def test_an_admin_sends_a_mass_message_and_watches_it_reach_100_percent(system: System, clients: Tabs) -> None:
    admin = clients(ADMIN)
    admin.page.get_by_role("button", name="Mass messages", exact=True).click()
    page = admin.page.get_by_test_id("mass-page")
    expect(page).to_be_visible()
    expect(page.get_by_label("Organisation").locator('option[value="org-school-2"]')).to_have_count(1)
    page.get_by_label("Organisation").select_option("org-school-2")
    page.get_by_role("checkbox", name="Teachers", exact=True).check()
    expect(page.get_by_role("checkbox", name="Everyone", exact=True)).not_to_be_checked()
    text = f"Staff meeting moved to 4 pm ({uuid.uuid4().hex[:6]})"
    page.get_by_label("Message text").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()

    job = page.get_by_test_id("mass-job").filter(has_text=text)
    expect(job).to_have_count(1)
    expect(job).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(job.get_by_test_id("mass-state")).to_have_text("Completed")
    expect(job.get_by_test_id("mass-percent")).to_have_text("100 %")
    assert progress_full(job.get_by_test_id("mass-progress"))
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    admin.screenshot("mass-completed")

    # The teacher received it, as a one-way message.
    teacher = clients(TEACHER)
    mass = teacher.page.locator("[data-testid=conversation-item][data-type=mass]").filter(has_text=text)
    expect(mass).to_have_count(1)


# 8 ---------------------------------------------------------------------------------------------


def test_markup_in_a_message_stays_text(system: System, clients: Tabs) -> None:
    cid = direct_conversation(system)
    teacher, student = clients(TEACHER), clients(STUDENT)
    student.open_conversation(cid)
    mid = student.send(XSS)
    # Also in a context without the CSP's safety net: the client itself must never build markup.
    unguarded = clients(TEACHER, bypass_csp=True)
    for each in (student, teacher, unguarded):
        each.open_conversation(cid)
        body = each.message(mid).get_by_test_id("message-body")
        expect(body).to_have_count(1)
        assert body.evaluate("(b) => b.textContent") == XSS
        expect(each.page.get_by_test_id("message-list").locator("img")).to_have_count(0)
        expect(each.page.get_by_test_id("message-body").locator("*")).to_have_count(0)
        assert each.dialogs == [], each.dialogs
    expect(unguarded.item(cid).get_by_test_id("conversation-preview")).to_have_text(XSS)  # a 1:1: no name


# 9, 10 -----------------------------------------------------------------------------------------


def test_the_main_screens_have_no_serious_accessibility_violations(system: System, clients: Tabs) -> None:
    # A report for the teacher, so that the Reports page has one to show.
    started = system.session(STUDENT).post(
        f"{system.api}/conversations",
        json={"recipients": [{"type": "user", "id": CLASSMATE}], "body": "you are a loser"},
        timeout=15,
    )
    mid = ok(started, 201)["message"]["id"]
    report = {"message_id": mid, "to_user_id": TEACHER, "reason": "Name calling"}
    ok(system.session(CLASSMATE).post(f"{system.api}/reports", json=report, timeout=15), 201)

    found: dict[str, list[dict[str, Any]]] = {}

    def check(client: Client, screen: str) -> None:
        client.screenshot(screen)
        found[screen] = client.serious_violations()

    anonymous = clients(None, bypass_csp=True)
    anonymous.page.goto(f"{anonymous.base}/")
    expect(anonymous.page.get_by_test_id("sign-in")).to_be_visible()
    expect(anonymous.page.get_by_role("button", name="user-t-001 (teacher)")).to_be_visible()
    check(anonymous, "sign-in")

    teacher = clients(TEACHER, bypass_csp=True)
    teacher.show_list()
    expect(teacher.page.get_by_test_id("conversation-item")).not_to_have_count(0)
    check(teacher, "panel")

    teacher.open_conversation(direct_conversation(system))
    expect(teacher.page.get_by_test_id("attachment")).not_to_have_count(0)
    check(teacher, "conversation")

    teacher.page.get_by_test_id("new-message-button").click()
    form = teacher.page.get_by_test_id("new-message")
    form.get_by_role("combobox", name="Add recipients").fill("Kowalski")
    expect(form.get_by_test_id("recipient-option")).not_to_have_count(0)
    check(teacher, "new-message")

    teacher.chat_button.click()  # close the panel
    teacher.page.get_by_role("button", name="Reports", exact=True).click()
    reports = teacher.page.get_by_test_id("reports-page")
    expect(reports.get_by_test_id("report")).to_have_count(1)
    expect(reports.get_by_test_id("report-reason")).to_have_text("Name calling")
    check(teacher, "reports")

    admin = clients(ADMIN, bypass_csp=True)
    admin.page.get_by_role("button", name="Mass messages", exact=True).click()
    expect(admin.page.get_by_test_id("mass-job")).not_to_have_count(0)
    check(admin, "mass")

    failing = {screen: violations for screen, violations in found.items() if violations}
    assert not failing, "serious or critical accessibility violations:\n" + "\n".join(
        f"--- {screen}\n{describe(violations)}" for screen, violations in failing.items()
    )
