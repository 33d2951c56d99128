"""Account upkeep on the cockpit page in headless Chromium, against the real API: a user changes
their own password in the dialog; an admin disables, enables and resets users in the users panel;
operators see no such panel. A screenshot of the panel goes to tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from dashboard_api.auth import MIN_PASSWORD, Role
from tests.test_api_harness import PASSWORD, USERS, Api, accounts_for, running_api
from tests.test_cockpit_browser import ARGS, ARTIFACTS, CHROMIUM

pytestmark = [
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (make debs)"
    ),
    pytest.mark.asyncio(loop_scope="module"),
]
NEW = "a brand new passphrase"
ADMIN = USERS[Role.ADMIN]
WRONG_LOGIN = "用户名或密码错误"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with running_api(tmp_path_factory.mktemp("cockpit-accounts")) as a:
        yield a


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def login_page(browser: Browser, api: Api, errors: list[str]) -> Page:
    """A fresh browser profile (no cookies, no language choice) on the login page."""
    context = await browser.new_context(viewport={"width": 1600, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(api.base + "/login")
    return page


async def log_in(page: Page, api: Api, name: str, password: str) -> None:
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#login-button")
    await page.wait_for_url(api.base + "/")
    await page.wait_for_selector("body[data-ready='1']")


async def refused(page: Page, name: str, password: str) -> None:
    await page.fill("#name", name)
    await page.fill("#password", password)
    await page.click("#login-button")
    await expect(page.locator("#login-error")).to_have_text(WRONG_LOGIN)
    assert page.url.endswith("/login")


async def test_operator_changes_own_password_and_sees_no_users_panel(
    api: Api, browser: Browser
) -> None:
    errors: list[str] = []
    await accounts_for(api.runtime).add_user("carol", Role.OPERATOR, PASSWORD, actor="test")
    page = await login_page(browser, api, errors)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url.removeprefix(api.base)}"))
    await log_in(page, api, "carol", PASSWORD)
    await expect(page.locator("#users-button")).to_be_hidden()
    await expect(page.locator("#users-panel")).to_be_hidden()
    assert not [r for r in requests if "/api/v1/users" in r]

    dialog = page.locator("#password-dialog")
    error = page.locator("#pw-error")
    await page.click("#password-button")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#pw-hint")).to_have_text(f"新密码至少 {MIN_PASSWORD} 个字符")
    # The page's own checks, before anything is sent: the server's minimum length, the repeat.
    short = "x" * (MIN_PASSWORD - 1)
    await page.fill("#pw-current", PASSWORD)
    await page.fill("#pw-new", short)
    await page.fill("#pw-repeat", short)
    await page.click("#pw-submit")
    await expect(error).to_have_text(f"新密码至少需要 {MIN_PASSWORD} 个字符")
    await page.fill("#pw-new", NEW)
    await page.fill("#pw-repeat", NEW + "!")
    await page.click("#pw-submit")
    await expect(error).to_have_text("两次输入的新密码不一致")
    assert not [r for r in requests if r == "POST /api/v1/auth/me/password"]

    # A wrong current password: the server refuses (403), and its words are shown.
    await page.fill("#pw-current", "not my password")
    await page.fill("#pw-repeat", NEW)
    await page.click("#pw-submit")
    await expect(error).to_have_text("当前密码错误 — the current password is wrong")
    await expect(dialog).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "cockpit-password.png"))

    await page.fill("#pw-current", PASSWORD)
    await page.click("#pw-submit")
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#toast.ok.show")).to_contain_text("密码已修改")
    assert requests.count("POST /api/v1/auth/me/password") == 2

    await page.click("#logout")
    await page.wait_for_url("**/login")
    await refused(page, "carol", PASSWORD)
    await log_in(page, api, "carol", NEW)
    await page.context.close()
    assert errors == []


async def test_too_many_wrong_current_passwords(api: Api, browser: Browser) -> None:
    errors: list[str] = []
    await accounts_for(api.runtime).add_user("dave", Role.COUNSELLOR, PASSWORD, actor="test")
    page = await login_page(browser, api, errors)
    await log_in(page, api, "dave", PASSWORD)
    await page.click("#lang")
    await page.click("#password-button")
    await page.fill("#pw-new", NEW)
    await page.fill("#pw-repeat", NEW)
    error = page.locator("#pw-error")
    window_s = api.runtime.config.api.login.window_s
    for i in range(api.runtime.config.api.login.max_failures):
        await page.fill("#pw-current", f"guess {i}")
        await page.click("#pw-submit")
        await expect(error).to_have_text(
            "The current password is wrong — the current password is wrong"
        )
        await page.evaluate("document.getElementById('pw-error').textContent = ''")
    await page.fill("#pw-current", PASSWORD)
    await page.click("#pw-submit")
    await expect(error).to_have_text(
        f"Too many tries, try again in {window_s} s — too many failed logins; retry in {window_s} s"
    )
    api.clock.advance(window_s + 1)
    await page.click("#pw-submit")
    await expect(page.locator("#password-dialog")).to_be_hidden()
    await page.context.close()
    assert errors == []


async def test_admin_disables_enables_and_resets_users(api: Api, browser: Browser) -> None:
    errors: list[str] = []
    await accounts_for(api.runtime).add_user("erin", Role.OPERATOR, PASSWORD, actor="test")
    erin = await login_page(browser, api, errors)
    await log_in(erin, api, "erin", PASSWORD)
    admin = await login_page(browser, api, errors)
    await log_in(admin, api, ADMIN, PASSWORD)

    await admin.click("#users-button")
    panel = admin.locator("#users-panel")
    await expect(panel).to_be_visible()
    names = [u.name for u in await accounts_for(api.runtime).users()]
    await expect(panel.locator("tr.user")).to_have_count(len(names))
    assert await panel.locator("tr.user td.name").all_text_contents() == [
        n + ("本人" if n == ADMIN else "") for n in names
    ]
    row = panel.locator("tr[data-user='erin']")
    await expect(row.locator(".role")).to_have_text("值班员")
    await expect(row.locator(".status")).to_have_text("已启用")
    await expect(panel.locator(f"tr[data-user='{ADMIN}'] button.reset")).to_have_count(0)

    # Cancelling changes nothing; confirming disables erin, whose open page loses its session.
    await row.locator("button.disable").click()
    await expect(admin.locator("#confirm-text")).to_contain_text("停用用户 erin？")
    await admin.click("#confirm-cancel")
    await expect(admin.locator("#confirm-dialog")).to_be_hidden()
    await expect(row.locator(".status")).to_have_text("已启用")
    await row.locator("button.disable").click()
    await admin.click("#confirm-ok")
    await expect(row).to_have_class("user disabled")
    await expect(row.locator(".status")).to_have_text("已停用")
    await expect(row.locator("button.enable")).to_be_visible()
    await erin.reload()
    await erin.wait_for_url("**/login")
    await refused(erin, "erin", PASSWORD)

    # The last enabled admin stays: the 409 is shown in the panel, and nothing changes.
    await panel.locator(f"tr[data-user='{ADMIN}'] button.disable").click()
    await expect(admin.locator("#confirm-text")).to_contain_text("停用您自己的账号")
    await admin.click("#confirm-ok")
    users_error = admin.locator("#users-error")
    await expect(users_error).to_contain_text("不能停用最后一个启用的管理员")
    await expect(users_error).to_contain_text(f"'{ADMIN}' is the last enabled admin")
    ARTIFACTS.mkdir(exist_ok=True)
    await admin.screenshot(path=str(ARTIFACTS / "cockpit-users.png"))
    await expect(panel.locator(f"tr[data-user='{ADMIN}'] .status")).to_have_text("已启用")

    await row.locator("button.enable").click()
    await expect(row.locator(".status")).to_have_text("已启用")
    await row.locator("button.reset").click()
    await expect(admin.locator("#confirm-text")).to_contain_text("为用户 erin 重置密码？")
    await admin.click("#confirm-ok")
    shown = admin.locator("#reset-password")
    await expect(admin.locator("#reset-dialog")).to_be_visible()
    await expect(admin.locator("#reset-title")).to_have_text("erin 的新密码")
    await expect(shown).not_to_be_empty()
    generated = await shown.text_content()
    assert generated is not None
    assert len(generated) >= MIN_PASSWORD
    await admin.screenshot(path=str(ARTIFACTS / "cockpit-users-reset.png"))
    await admin.click("#reset-done")
    await expect(admin.locator("#reset-dialog")).to_be_hidden()
    await expect(shown).to_be_empty()

    await refused(erin, "erin", PASSWORD)
    await log_in(erin, api, "erin", generated)

    await admin.click("#lang")
    await expect(admin.locator("#users-heading")).to_have_text("Users")
    await expect(row.locator(".status")).to_have_text("enabled")
    await erin.context.close()
    await admin.context.close()
    assert errors == []
