"""End-to-end tests of pqwatch's web front in a real headless browser.

Debian's chromium, driven through chromedriver by Selenium; nothing is downloaded at run time.
The daemon (`target/debug/pqwatch run`) serves a database filled from the real corpus answers
(made by the ignored Rust test `web::browser_fixture_database`), and delivers mail to the local
SMTP server (tests/support/smtp_sink.py). Screenshots are kept in target/browser/.

Usage: python3 tests/browser/test_web.py   (scripts/test installs what it needs and runs it)
Prints "browser: N passed, N failed" and exits non-zero if any test failed.
"""
import email
import email.policy
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

import feedparser
from lxml import etree
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "debug", "pqwatch")
ARTEFACTS = os.path.join(ROOT, "target", "browser")
HOSTILE = "<script>alert(1)</script>"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Env:
    """The daemon, the SMTP sink and the browser, shared by the tests."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pqwatch-browser-")
        self.db = os.path.join(self.dir, "db.sqlite")
        env = dict(os.environ, PQWATCH_BROWSER_DB=self.db)
        subprocess.run(
            ["cargo", "test", "--locked", "--quiet", "--test", "integration",
             "web::browser_fixture_database", "--", "--ignored", "--exact"],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        self.smtp_dir = os.path.join(self.dir, "smtp")
        os.makedirs(self.smtp_dir)
        smtp_port = free_port()
        self.smtp = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "support", "smtp_sink.py"),
             str(smtp_port), self.smtp_dir], stdout=subprocess.PIPE)
        assert self.smtp.stdout.readline().strip() == b"ready"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            {k: v for k, v in os.environ.items() if not k.startswith("PQWATCH_")},
            PQWATCH_DATABASE_PATH=self.db,
            PQWATCH_API_BASE_URL="http://127.0.0.1:9",
            PQWATCH_WEB_LISTEN=f"127.0.0.1:{self.port}",
            PQWATCH_MAIL_PUBLIC_BASE_URL=self.base,
            PQWATCH_MAIL_SMTP_URL=f"smtp+plain://127.0.0.1:{smtp_port}",
            PQWATCH_MAIL_FROM="pqwatch <alerts@pqwatch.test>",
            PQWATCH_MAIL_OUTBOX_DIR=os.path.join(self.dir, "outbox"),
            PQWATCH_SCHEDULE_CRON="0 0 0 1 1 *",
            RUST_LOG="warn",
        )
        self.daemon = subprocess.Popen(
            [BIN, "--config", os.path.join(ROOT, "config", "pqwatch.toml"), "run"],
            env=self.env, stderr=open(os.path.join(self.dir, "daemon.log"), "wb"))
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/assets/style.css", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1200,1000",
                     "--user-data-dir=" + os.path.join(self.dir, "chromium")]:
            options.add_argument(flag)
        self.browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.browser.set_page_load_timeout(30)

    def cli(self, *args):
        out = subprocess.run(
            [BIN, "--config", os.path.join(ROOT, "config", "pqwatch.toml"), *args],
            env=self.env, capture_output=True, check=True)
        return json.loads(out.stdout)

    def subscribers(self):
        return self.cli("subscribers", "list", "--json")

    def mail_to(self, address, count=1, timeout=15):
        """The messages received for `address`, waiting for `count` of them."""
        deadline = time.time() + timeout
        while True:
            found = []
            for path in sorted(glob.glob(os.path.join(self.smtp_dir, "*.eml")),
                               key=lambda p: [int(x) for x in os.path.basename(p)[:-4].split("-")]):
                with open(path, "rb") as f:
                    msg = email.message_from_binary_file(f, policy=email.policy.default)
                if address.lower() in str(msg["To"]).lower():
                    found.append(msg)
            if len(found) >= count:
                return found
            if time.time() > deadline:
                raise AssertionError(f"{count} message(s) to {address} did not arrive")
            time.sleep(0.1)

    def shot(self, name):
        os.makedirs(ARTEFACTS, exist_ok=True)
        path = os.path.join(ARTEFACTS, name)
        self.browser.save_screenshot(path)
        return path

    def close(self):
        try:
            self.browser.quit()
        finally:
            self.daemon.terminate()
            self.smtp.terminate()
            self.daemon.wait(20)
            self.smtp.wait(20)
            if os.environ.get("KEEP"):
                print("kept", self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)


def text_of(msg):
    return msg.get_body(preferencelist=("plain",)).get_content()


def post(url, data, headers=None):
    req = urllib.request.Request(url, data=data.encode(), method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def settles(browser, ready, timeout=10):
    """Waits for the page a click or a submit navigates to: a click returns before the browser
    has loaded the next page, so reading it at once can read the old one."""
    WebDriverWait(
        browser,
        timeout,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(ready)


def h1(browser):
    return browser.find_element(By.TAG_NAME, "h1").text


def no_alert(browser):
    try:
        browser.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


# ---------------------------------------------------------------------------------------------


def test_sign_up_confirm_manage_and_one_click_unsubscribe(env):
    b = env.browser
    b.get(env.base + "/subscribe")
    env.shot("subscribe.png")
    # Every visible field has a label; the form works with the keyboard alone.
    for field in b.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
        fid = field.get_attribute("id")
        assert b.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"), fid
    b.find_element(By.ID, "email").send_keys("rep@union.test")
    b.find_element(By.ID, "keywords").send_keys("drones, assaults on staff")
    b.find_element(By.CSS_SELECTOR, "label[for=f-weekly]").click()
    b.find_element(By.ID, "keywords").submit()
    settles(b, lambda d: "Check your email" in h1(d))
    subs = env.subscribers()
    assert [(s["email"], s["confirmed"], s["frequency"]) for s in subs] == \
        [("rep@union.test", False, "weekly")], subs

    confirmation = env.mail_to("rep@union.test")[0]
    link = re.search(re.escape(env.base) + r"/confirm\?t=[0-9a-f.]+", text_of(confirmation)).group(0)
    b.get(link)
    assert env.subscribers()[0]["confirmed"] is False, "opening the link changes nothing"
    b.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    settles(b, lambda d: h1(d) == "Confirmed")
    assert env.subscribers()[0]["confirmed"] is True
    manage = b.find_element(By.PARTIAL_LINK_TEXT, "Change what you follow").get_attribute("href")

    # A second click of the same link says so.
    b.get(link)
    assert b.find_element(By.TAG_NAME, "h1").text == "Already confirmed"

    # The manage page changes what is followed.
    b.get(manage)
    box = b.find_element(By.ID, "keywords")
    assert box.get_attribute("value") == "drones, assaults on staff"
    box.clear()
    box.send_keys("parole, licence recall")
    b.find_element(By.CSS_SELECTOR, "label[for=f-daily]").click()
    box.submit()
    settles(b, lambda d: "Saved." in d.page_source)
    s = env.subscribers()[0]
    assert s["keywords"] == ["parole", "licence recall"] and s["frequency"] == "daily", s

    # RFC 8058 one-click: a mail client's POST to the List-Unsubscribe link, no page, no cookie.
    header = str(confirmation["List-Unsubscribe"])
    one_click = re.search(r"<(" + re.escape(env.base) + r"/unsubscribe\?t=[0-9a-f.]+)>", header).group(1)
    assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    status, _ = post(one_click, "List-Unsubscribe=One-Click",
                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert env.subscribers() == []

    # Replayed links: the spent confirm and manage links change nothing and say so.
    for spent in (link, manage):
        b.get(spent)
        assert b.find_element(By.TAG_NAME, "h1").text == "Link not recognised", spent
    assert env.subscribers() == []


def test_forged_links_get_a_clear_page_and_change_nothing(env):
    b = env.browser
    token = "0123456789abcdef0123456789abcdef"
    for path in [f"/confirm?t={token}.{'0' * 64}", f"/manage?t={token}.{'ab' * 32}",
                 f"/unsubscribe?t={token}"]:
        b.get(env.base + path)
        assert b.find_element(By.TAG_NAME, "h1").text == "Link not recognised", path
        assert "nothing was changed" in b.page_source
    b.get(env.base + "/confirm?t=")
    assert b.find_element(By.TAG_NAME, "h1").text == "This link is not complete"


def test_the_chart_draws_the_stored_figures_and_marks_the_revision(env):
    changes = env.cli("changes", "--json")
    revised = next(c for c in changes if c["change"] == "revised")
    sid = revised["statistic_id"]
    detail = env.cli("series", "show", str(sid), "--json")
    latest = {}
    for v in detail["values"]:
        if v["value"] is not None and v["period"]:
            latest[v["period"]] = v["value"]
    b = env.browser
    b.get(f"{env.base}/statistics/{sid}")
    points = {p.get_attribute("data-period"): float(p.get_attribute("data-value"))
              for p in b.find_elements(By.CSS_SELECTOR, "svg.chart circle.point")}
    assert points == latest, (points, latest)
    earlier = b.find_elements(By.CSS_SELECTOR, "svg.chart circle.earlier")
    assert [float(e.get_attribute("data-value")) for e in earlier] == [float(revised["previous_value"])]
    # The chart is drawn where the browser lays it out, and higher values are higher up.
    by_period = sorted(b.find_elements(By.CSS_SELECTOR, "svg.chart circle.point"),
                       key=lambda p: float(p.get_attribute("data-value")))
    assert by_period[0].location["y"] >= by_period[-1].location["y"]
    env.shot("statistic.png")
    # The CSV download is `series export --csv`.
    with urllib.request.urlopen(f"{env.base}/statistics/{sid}/export.csv") as r:
        csv = r.read().decode()
    out = subprocess.run([BIN, "--config", os.path.join(ROOT, "config", "pqwatch.toml"),
                          "series", "export", str(sid), "--csv"],
                         env=env.env, capture_output=True, check=True).stdout.decode()
    assert csv == out
    b.get(env.base + "/")
    env.shot("home.png")


def test_hostile_html_in_an_answer_is_shown_as_text_everywhere(env):
    b = env.browser
    for path in ["/", "/answers/9", "/statistics?q=drones"]:
        b.get(env.base + path)
        assert no_alert(b), path
        assert not b.find_elements(By.CSS_SELECTOR, "main script, main img"), path
    b.get(env.base + "/answers/9")
    assert HOSTILE in b.find_element(By.TAG_NAME, "h1").text
    for url in [env.base + "/feeds/changes.atom", env.base + "/feeds/changes.atom?keyword=prison"]:
        with urllib.request.urlopen(url) as r:
            body = r.read()
        feed = feedparser.parse(body)
        assert not feed.bozo, feed.bozo_exception
        titles = [e.title for e in feed.entries]
        assert any(HOSTILE in t for t in titles), titles
        assert b"<script>" not in body
        for e in feed.entries:
            assert e.id and e.updated and e.link.startswith(env.base + "/answers/"), e


def test_the_atom_feed_is_valid_atom(env):
    with urllib.request.urlopen(env.base + "/feeds/changes.atom?keyword=probation") as r:
        assert r.headers["Content-Type"].startswith("application/atom+xml")
        body = r.read()
    feed = feedparser.parse(body)
    assert not feed.bozo and feed.version == "atom10", (feed.bozo, feed.version)
    assert len(feed.entries) >= 1
    # RFC 4287's required elements, checked on the parsed tree.
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = etree.fromstring(body)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    for req in ["a:id", "a:title", "a:updated", "a:author/a:name", "a:link[@rel='self']"]:
        assert root.find(req, ns) is not None, req
    for entry in root.findall("a:entry", ns):
        for req in ["a:id", "a:title", "a:updated", "a:link[@rel='alternate']", "a:summary"]:
            assert entry.find(req, ns) is not None, req
        time.strptime(entry.find("a:updated", ns).text[:19], "%Y-%m-%dT%H:%M:%S")


def test_a_sign_up_flood_is_stopped_at_the_rate_limit(env):
    # The form's cookie and signed field, as a script would take them.
    with urllib.request.urlopen(env.base + "/subscribe") as r:
        cookie = r.headers["Set-Cookie"].split(";")[0]
        csrf = re.search(r'name="csrf" value="([0-9a-f.]+)"', r.read().decode()).group(1)
    statuses = []
    for i in range(14):
        body = urllib.parse.urlencode({"email": f"flood{i}@spam.test", "keywords": "prison",
                                       "frequency": "instant", "csrf": csrf})
        status, _ = post(env.base + "/subscribe", body,
                         {"Cookie": cookie, "X-Forwarded-For": "198.51.100.7",
                          "Content-Type": "application/x-www-form-urlencoded"})
        statuses.append(status)
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429] * 4, statuses
    flooded = [s for s in env.subscribers() if s["email"].endswith("@spam.test")]
    assert len(flooded) == 10, flooded
    # Another address is still served.
    b = env.browser
    b.get(env.base + "/subscribe")
    assert b.find_element(By.TAG_NAME, "h1").text.startswith("Get email alerts")


def test_pages_carry_the_security_headers(env):
    for path in ["/", "/statistics", "/subscribe", "/feeds/changes.atom", "/nope"]:
        try:
            r = urllib.request.urlopen(env.base + path)
        except urllib.error.HTTPError as e:
            r = e
        csp = r.headers["Content-Security-Policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp, csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    order = ["test_sign_up", "test_forged", "test_the_chart", "test_hostile", "test_the_atom",
             "test_pages", "test_a_sign_up_flood"]
    tests.sort(key=lambda t: next(i for i, p in enumerate(order) if t[0].startswith(p)))
    env = Env()
    passed, failed = 0, 0
    try:
        for name, f in tests:
            try:
                f(env)
                print(f"browser {name} ... ok", flush=True)
                passed += 1
            except Exception:
                print(f"browser {name} ... FAILED", flush=True)
                traceback.print_exc()
                try:
                    env.shot(f"failed-{name}.png")
                except Exception:
                    pass
                failed += 1
    finally:
        env.close()
    print(f"browser: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
