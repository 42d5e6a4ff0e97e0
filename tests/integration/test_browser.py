"""The web page in a real browser: Debian's headless Chromium, driven by
chromedriver through Selenium. Two pages and a chatc client chat in a room;
the history shows on joining; what a hostile user sends is shown as text
and runs nothing; a page reconnects by itself after chatd restarts. A
screenshot of each page is saved (CHATD_ARTIFACTS, else the test's
temporary folder) for a person to look at.

Needs chromium, chromium-driver and python3-selenium (skipped without
them); Selenium is Debian's, so this file runs itself again under
/usr/bin/python3 when the Python running it has no selenium module."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import selenium  # noqa: F401
except ImportError:
    DEBIAN_PYTHON = "/usr/bin/python3"
    if (os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and
            os.access(DEBIAN_PYTHON, os.X_OK) and
            subprocess.run([DEBIAN_PYTHON, "-c", "import selenium"],
                           capture_output=True).returncode == 0):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    selenium = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chatdtest import TIMEOUT, WEB_ROOT, ChatdTestCase, Server, free_port, main  # noqa: E402
from test_chatc import Chatc  # noqa: E402

if selenium:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> </script><script>document.title='pwned'</script>"


class Page:
    """One browser window (a profile of its own) on the chat page."""

    def __init__(self, url, profile):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1000,700", "--user-data-dir=" + profile,
                    "--no-first-run", "--disable-extensions", "--disable-background-networking"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(TIMEOUT * 3)
        self.driver.get(url)

    def el(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what, check, timeout=TIMEOUT * 2):
        """Polls CHECK (a function of the page) until it is true."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("page: timed out waiting for %s; log shows:\n%s\nstatus: %r"
                                     % (what, self.log_text(), self.el("status").text))
            time.sleep(0.05)

    def log_text(self):
        return self.js("return document.getElementById('log').textContent")

    def lines(self):
        """The lines of the window in view: [(classes, nick, text)]."""
        return self.js("""return [...document.querySelectorAll('#log .line')].map(l =>
            [l.className, (l.querySelector('.nick') || {}).textContent || '',
             l.querySelector('.text').textContent]);""")

    def wait_line(self, nick, text, history=None):
        def found():
            for classes, n, t in self.lines():
                if n == nick and t == text and (history is None or
                                                ("history" in classes.split()) == history):
                    return True
            return False
        return self.wait("%s: %s" % (nick, text), found)

    def log_in(self, nick, room="#lobby"):
        self.el("login-nick").clear()
        self.el("login-nick").send_keys(nick)
        self.el("login-room").clear()
        self.el("login-room").send_keys(room)
        self.el("login").submit()

    def login_shown(self):
        """Whether the login form is in view (while the page reloads, not)."""
        try:
            return self.js("const f = document.getElementById('login');"
                           "return document.readyState === 'complete' && !!f && !f.hidden")
        except WebDriverException:
            return False

    def in_room(self, room):
        self.wait("to be in " + room, lambda: self.el("window-name").text == room and
                  self.el("say-text").is_displayed())

    def say(self, text):
        box = self.el("say-text")
        box.send_keys(text)
        self.el("say").submit()

    def switch(self, name):
        """Shows the window NAME, as a click in the list of open ones does."""
        for item in self.driver.find_elements(By.CSS_SELECTOR, "#windows li .name"):
            if item.text == name:
                item.click()
                title = "chatd" if name == "server" else name  # the server's window
                return self.wait("window " + name, lambda: self.el("window-name").text == title)
        raise AssertionError("no window %s open" % name)

    def people(self):
        return self.js("return [...document.querySelectorAll('#people li .name')].map(l => l.textContent)")

    def screenshot(self, name):
        folder = os.environ.get("CHATD_ARTIFACTS") or tempfile.gettempdir()
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + ".png")
        self.driver.save_screenshot(path)
        print("screenshot: %s" % path)
        return path

    def errors(self):
        """What the page's console said at SEVERE level."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def close(self):
        self.driver.quit()


class BrowserTest(ChatdTestCase):

    @classmethod
    def setUpClass(cls):
        if selenium is None:
            raise __import__("unittest").SkipTest("python3-selenium is not installed")
        for tool in (CHROMIUM, CHROMEDRIVER):
            if not os.access(tool, os.X_OK):
                raise __import__("unittest").SkipTest("%s is not installed" % tool)

    def page(self, port):
        profile = tempfile.TemporaryDirectory(prefix="chatd-browser-")
        self.addCleanup(profile.cleanup)
        p = Page("http://127.0.0.1:%d/" % port, profile.name)
        self.addCleanup(p.close)
        return p

    def chatc(self, port, nick, room="garden"):
        c = Chatc("-n", nick, "-r", room, "127.0.0.1:%d" % port)
        self.addCleanup(c.close)
        c.out.wait(r"^= you joined %s" % room)
        return c

    def serve(self, ports, db):
        """A chatd on fixed PORTS (line, irc, web), so that it can be started
        again where the pages left it."""
        line, irc, web = ports
        srv = Server({"server": {"port": str(line)}, "irc": {"port": str(irc)},
                      "web": {"port": str(web), "root": WEB_ROOT},
                      "store": {"path": db}, "history": {"keep": "100", "replay": "20"}})
        self.addCleanup(srv.close)
        return srv.start()

    def test_pages_and_chatc_chat(self):
        state = tempfile.TemporaryDirectory(prefix="chatd-browser-db-")
        self.addCleanup(state.cleanup)
        db = os.path.join(state.name, "chatd.db")
        ports = (free_port(), free_port(), free_port())
        srv = self.serve(ports, db)
        web = srv.web_port

        cc = self.chatc(srv.port, "carol")
        cc.send("said before anyone came\n")
        cc.send("/topic " + HOSTILE + "\n")
        cc.out.wait(r"topic")

        anna = self.page(web)
        self.assertEqual(anna.driver.title, "chatd")
        anna.log_in("anna", "#garden")
        anna.in_room("#garden")
        # What was said before, shown as history.
        anna.wait_line("carol", "said before anyone came", history=True)
        anna.wait("the topic", lambda: anna.el("topic").text == HOSTILE)

        bert = self.page(web)
        bert.log_in("bert", "#garden")
        bert.in_room("#garden")
        anna.wait("bert among the people", lambda: "bert" in anna.people())
        cc.out.wait(r"^> bert ")

        anna.say("hello from anna")
        bert.wait_line("anna", "hello from anna", history=False)
        cc.out.wait(r"^\[anna\] hello from anna$")
        cc.send("hello pages\n")
        anna.wait_line("carol", "hello pages")
        bert.wait_line("carol", "hello pages")
        bert.say("/me waves")
        anna.wait_line("bert", "waves")
        cc.out.wait(r"^\* bert waves$")

        # A private message opens a window of its own.
        bert.say("/msg anna just for you")
        anna.wait("the private window", lambda: "bert" in anna.el("windows").text)
        anna.switch("bert")
        anna.wait_line("bert", "just for you")
        anna.switch("#garden")
        bert.switch("#garden")

        # Hostile text is text: shown as sent, and nothing ran.
        cc.send(HOSTILE + "\n")
        for p in (anna, bert):
            p.wait_line("carol", HOSTILE)
            self.assertEqual(p.driver.title, "chatd")
            self.assertEqual(p.js("return document.querySelectorAll('#log img, #log script').length"), 0)
        # A hostile nick is refused by the server, and the refusal shown as text.
        eve = self.page(web)
        eve.log_in("<img/src=x/onerror=alert(1)>")
        eve.wait("the refusal", lambda: "cannot be used" in eve.el("login-error").text)
        self.assertIn("<img/src=x/onerror=alert(1)>", eve.el("login-error").text)
        self.assertEqual(eve.js("return document.querySelectorAll('img').length"), 0)
        eve.screenshot("browser-refused-nick")

        anna.screenshot("browser-anna")
        bert.screenshot("browser-bert")

        # chatd restarts: the pages say so, come back by themselves, and
        # chat again.
        cc.close()
        srv.stop()
        srv.close()
        anna.wait("the disconnection notice",
                  lambda: "Reconnecting" in anna.el("status").text)
        srv = self.serve(ports, db)
        cc = self.chatc(srv.port, "carol")
        anna.wait("the reconnection", lambda: not anna.el("status").is_displayed(),
                  timeout=TIMEOUT * 4)
        bert.wait("the reconnection", lambda: not bert.el("status").is_displayed(),
                  timeout=TIMEOUT * 4)
        anna.wait("anna back in #garden", lambda: "anna" in anna.people())
        anna.say("back again")
        cc.out.wait(r"^\[anna\] back again$")
        bert.wait_line("anna", "back again")
        anna.screenshot("browser-reconnected")

        for p in (anna, bert, eve):
            # The only console errors allowed: the failed connections while
            # chatd was down.
            errors = [e for e in p.errors()
                      if "WebSocket connection" not in e.get("message", "")]
            self.assertEqual(errors, [], "console errors")

    def test_register_then_log_in_with_the_password(self):
        srv = self.start_irc_server(web=True, config={"history": {"keep": "0"}})
        p = self.page(srv.web_port)
        p.log_in("reggie")
        p.in_room("#lobby")
        p.say("/register correct-horse-9")
        p.wait("the registration", lambda: "reggie is now registered to you" in p.log_text())
        p.say("/quit")
        p.wait("the page after /quit", p.login_shown)
        # Another browser logs in to the account with its password (SASL).
        q = self.page(srv.web_port)
        q.el("login-password").send_keys("correct-horse-9")
        q.log_in("reggie")
        q.in_room("#lobby")
        q.switch("server")
        q.wait("the login", lambda: "You are now logged in as reggie" in q.log_text())
        q.say("/quit")  # the page reloads, with the login form, once chatd has it
        q.wait("the page after /quit", q.login_shown)
        # A wrong password is refused, and said on the login form.
        r = self.page(srv.web_port)
        r.el("login-password").send_keys("wrong-password")
        r.log_in("reggie")
        r.wait("the refusal", lambda: "Wrong password" in r.el("login-error").text)

    def test_phone_screen_and_dark_theme(self):
        srv = self.start_irc_server(web=True)
        p = self.page(srv.web_port)
        p.driver.set_window_size(390, 800)
        p.log_in("phone")
        p.in_room("#lobby")
        # One column: the side panel is away until asked for.
        self.assertTrue(p.el("toggle-side").is_displayed())
        left = p.js("return document.getElementById('side').getBoundingClientRect().right")
        self.assertLessEqual(left, 1)
        p.el("toggle-side").click()
        p.wait("the side panel", lambda: p.js(
            "return document.getElementById('side').getBoundingClientRect().left") >= 0)
        p.el("toggle-side").click()
        p.wait("the side panel away", lambda: p.js(
            "return document.getElementById('side').getBoundingClientRect().right") <= 1)
        before = p.js("return getComputedStyle(document.body).backgroundColor")
        p.el("toggle-theme").click()
        after = p.js("return getComputedStyle(document.body).backgroundColor")
        self.assertNotEqual(before, after)
        p.screenshot("browser-phone")


if __name__ == "__main__":
    main()
