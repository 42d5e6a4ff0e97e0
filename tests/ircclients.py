#!/usr/bin/env python3
"""Drivers for real IRC clients from Debian packages, for tests against any
IRC server on a loopback port: WeeChat (weechat-headless, told what to do
through its fifo plugin, read through its logger plugin's files), ii (its
`in` FIFOs and `out` files), irssi (on the terminal of a private tmux
server, read with capture-pane, its raw traffic from /rawlog) and a bot on
python3-irc (this file, run as a script in a subprocess).

Each driver starts its client against HOST:PORT with a nick (no TLS, no
SASL, no server password), in a temporary directory and a process group of
its own (irssi: a tmux server of its own). Every wait polls with a deadline
and fails with what the client showed; close() (or the end of a with block)
asks the client to quit, kills what is left of it, and removes the
directory. Nothing here knows chatd: the same driver runs against ngIRCd.

What a client shows is read back as lines in the client's own format:
lines(where) for a channel (or None: the server window), and the wait_*
methods match the usual events (someone said, did /me, joined, left,
changed nick, set the topic) in that format, so a test can ask every client
the same question.

    with WeeChat("127.0.0.1", port, "wee") as w:
        w.join("#games")
        w.say("#games", "hello")
        w.wait_said("#games", "bob", "hi wee")
"""
import errno
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatdtest import TIMEOUT  # noqa: E402

# How often a wait looks again at a file or a screen.
POLL = 0.05
# How long a client is given to quit by itself when closed, before it is
# killed.
QUIT_GRACE = 3.0


def which(name):
    """The path of a program, looking in the sbin folders too."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def read_lines(path):
    """The complete lines of a file (a last line without its newline is
    still being written, and left out), [] while it does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [l.decode("utf-8", "replace") for l in data.split(b"\n")[:-1]]


def write_fifo(path, line, timeout=TIMEOUT):
    """Writes one line to a FIFO that a client reads. Waits (polling) for the
    FIFO to exist and to have its reader: a non-blocking open fails with
    ENXIO until then, so nothing here can hang on a client that is gone."""
    data = (line + "\n").encode()
    if len(data) > 4096:
        raise ValueError("line too long for one atomic FIFO write: %r" % line)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENXIO):
                raise
            if time.monotonic() > deadline:
                raise AssertionError("cannot write to %s: %s" % (path, e))
            time.sleep(POLL)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def alive(pid):
    """Whether pid is a process that has not ended (a zombie has)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def end_process_group(proc, grace=QUIT_GRACE):
    """Ends proc, the leader of a process group of its own, and everything in
    that group: gives it grace seconds to exit by itself (after a quit it was
    asked for), then SIGTERM to the group, 2 seconds, then SIGKILL to the
    group, and reaps it. The leader is waited for without being reaped
    (waitid WNOWAIT): while it is not reaped its pid, the group's id, cannot
    be anybody else's, so the group signals reach only what it started."""
    if proc is None or proc.returncode is not None:
        return

    def exited(seconds):
        deadline = time.monotonic() + seconds
        while True:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)

    if not exited(grace):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        exited(2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever else is left in the group
    except ProcessLookupError:
        pass
    proc.wait(TIMEOUT)


def rx(template, **names):
    """A compiled regex from a template whose {name} fields are filled with
    re.escape()d values."""
    return re.compile(template.format(**{k: re.escape(v) for k, v in names.items()}))


class IrcClient:
    """What every driver has: a temporary directory, the client's process,
    waiting for what it shows, and the events it can be asked about.

    Subclasses set NAME and BINARIES, launch the client in _launch(), tell
    it to quit in _quit(), return what it shows in lines(), and fill
    FORMATS with the regex templates of the events as they show them."""

    NAME = "?"
    BINARIES = ()
    PACKAGES = ""  # what apt-get installs it from
    # Event name -> (where it shows: "channel" or "server", regex template).
    # Fields: {nick} {channel} {text} {old} {new}.
    FORMATS = {}

    @classmethod
    def missing(cls):
        """Why this client cannot run here (a reason for a skip), or None."""
        gone = [b for b in cls.BINARIES if not which(b)]
        if gone:
            return "%s is not installed (no %s; apt-get install %s)" % (
                cls.NAME, ", ".join(gone), cls.PACKAGES)
        return None

    def __init__(self, host, port, nick, timeout=TIMEOUT):
        self.host = host
        self.port = int(port)
        self.nick = nick
        self.timeout = timeout
        self.tmp = tempfile.TemporaryDirectory(prefix="irc-%s-" % self.NAME.lower())
        self.dir = self.tmp.name
        self.proc = None
        self.closed = False

    # -- life
    def start(self):
        """Starts the client and waits until it is registered (the server's
        001 seen). Returns self."""
        try:
            self._launch()
            self.wait_registered()
        except BaseException:
            self.close()
            raise
        return self

    def _spawn(self, argv, env=None, output="output"):
        """Starts argv in the temporary directory, in a new session (a
        process group of its own), stdin /dev/null, stdout and stderr to
        the file `output` there."""
        with open(os.path.join(self.dir, output), "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        """Asks the client to quit, ends whatever is left of it, removes the
        temporary directory. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.running():
                try:
                    self._quit("closing")
                except (OSError, AssertionError):
                    pass
        finally:
            try:
                end_process_group(self.proc)
            finally:
                self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def _launch(self):
        raise NotImplementedError

    def _quit(self, reason):
        raise NotImplementedError

    # -- what it shows
    def lines(self, where=None):
        """What the client shows for channel `where` (None: its server
        window), as lines in its own format."""
        raise NotImplementedError

    def mark(self, where=None):
        """A position in lines(where), for waiting only for what comes
        after it."""
        return len(self.lines(where))

    def output(self):
        """The lines of the client's own stdout and stderr."""
        return read_lines(os.path.join(self.dir, "output"))

    def dump(self, where=None):
        """What the client showed of `where`, and whatever else of it may
        tell why a wait failed, for failure messages."""
        parts = ["%s shows (%s):" % (self.NAME, "server window" if where is None else where)]
        parts += self.lines(where)[-60:]
        for title, lines in self.more_to_dump(where):
            if lines:
                parts += [title + ":"] + lines
        return "\n".join(parts)

    def more_to_dump(self, where):
        """(title, lines) that dump() adds after what the client showed."""
        return [("its output", self.output()[-30:])]

    def wait_for(self, pattern, where=None, start=0, timeout=None, what=None):
        """The re.Match of the first line of lines(where) from index start
        that matches pattern (a regex or a string), polling until timeout;
        AssertionError with what the client showed otherwise, also at once
        when the client has ended."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for line in self.lines(where)[start:]:
                m = regex.search(line)
                if m:
                    return m
            gone = not self._alive()
            if gone or time.monotonic() >= deadline:
                raise AssertionError("%s never showed %s%s; %s" % (
                    self.NAME, what or repr(regex.pattern),
                    " (it has ended)" if gone else " within %ss" % (
                        self.timeout if timeout is None else timeout),
                    self.dump(where)))
            time.sleep(POLL)

    def _alive(self):
        return self.running()

    def wait_registered(self):
        raise NotImplementedError

    # -- events, as this client shows them
    def _event(self, event, channel, start, timeout, **fields):
        where_kind, template = self.FORMATS[event]
        where = channel if where_kind == "channel" else None
        regex = rx(template, channel=channel or "", **fields)
        what = "%s %s" % (event, ", ".join("%s=%r" % kv for kv in sorted(fields.items())))
        return self.wait_for(regex, where, start, timeout, what)

    def event_where(self, event, channel):
        """Where (a channel, or None: the server window) this client shows
        an event: pass it to mark() before waiting for the event."""
        return channel if self.FORMATS[event][0] == "channel" else None

    def wait_said(self, channel, nick, text, start=0, timeout=None):
        return self._event("said", channel, start, timeout, nick=nick, text=text)

    def wait_action(self, channel, nick, text, start=0, timeout=None):
        return self._event("action", channel, start, timeout, nick=nick, text=text)

    def wait_joined(self, channel, nick, start=0, timeout=None):
        return self._event("joined", channel, start, timeout, nick=nick)

    def wait_parted(self, channel, nick, start=0, timeout=None):
        return self._event("parted", channel, start, timeout, nick=nick)

    def wait_quit(self, channel, nick, start=0, timeout=None):
        return self._event("quit", channel, start, timeout, nick=nick)

    def wait_nick_change(self, channel, old, new, start=0, timeout=None):
        """Someone else's nick change (old to new), as shown for channel."""
        return self._event("nick", channel, start, timeout, old=old, new=new)

    def wait_own_nick_change(self, channel, new, start=0, timeout=None):
        return self._event("own_nick", channel, start, timeout, new=new)

    def wait_topic(self, channel, nick, text, start=0, timeout=None):
        """nick set channel's topic to text."""
        return self._event("topic", channel, start, timeout, nick=nick, text=text)

    def wait_topic_shown(self, channel, text, start=0, timeout=None):
        """The topic, as shown on joining channel (332)."""
        return self._event("topic_shown", channel, start, timeout, text=text)


# ---- WeeChat -----------------------------------------------------------

class WeeChat(IrcClient):
    """weechat-headless with only the irc, logger and fifo plugins. Commands
    go in through the fifo plugin's pipe (`BUFFER *TEXT` lines), what it
    shows comes back from the logger plugin's files (flushed at once), one
    per buffer: `PREFIX<TAB>MESSAGE` lines, dates cut off, nicks without
    their mode character (irc.look.nick_mode none). Registration is seen
    from the server's `command` option, which WeeChat runs on 001."""

    NAME = "WeeChat"
    BINARIES = ("weechat-headless",)
    PACKAGES = "weechat-headless weechat-plugins"
    SERVER = "chatdtest"
    REGISTERED = "chatdtest: registered"
    FORMATS = {
        "said": ("channel", r"^{nick}\t{text}$"),
        "action": ("channel", r"^ \*\t{nick} {text}$"),
        "joined": ("channel", r"^-->\t{nick}( \(.*\))? has joined {channel}$"),
        "parted": ("channel", r"^<--\t{nick}( \(.*\))? has left {channel}( \(.*\))?$"),
        "quit": ("channel", r"^<--\t{nick}( \(.*\))? has quit( \(.*\))?$"),
        "nick": ("channel", r"^--\t{old} is now known as {new}$"),
        "own_nick": ("channel", r"^--\tYou are now known as {new}$"),
        "topic": ("channel", r'^--\t{nick} has changed topic for {channel}( from ".*")? to "{text}"$'),
        "topic_shown": ("channel", r'^--\tTopic for {channel} is "{text}"$'),
    }

    @classmethod
    def missing(cls):
        reason = super(WeeChat, cls).missing()
        # The fifo plugin is in weechat-plugins, which weechat-headless
        # only recommends.
        if not reason and not glob.glob("/usr/lib/*/weechat/plugins/fifo.so") + \
                glob.glob("/usr/lib/weechat/plugins/fifo.so"):
            reason = "WeeChat's fifo plugin is not installed (apt-get install weechat-plugins)"
        return reason

    def __init__(self, host, port, nick, timeout=TIMEOUT, tls_ca=None, sasl=None):
        """tls_ca: connect over TLS, trusting the CA certificate in this
        file (and checking the host name). sasl: (mechanism, account,
        password) to log in with as it connects (mechanism: plain,
        scram-sha-256)."""
        super().__init__(host, port, nick, timeout)
        self.tls_ca = tls_ca
        self.sasl = sasl

    def _launch(self):
        self.fifo = os.path.join(self.dir, "fifo")
        self.logs = os.path.join(self.dir, "logs")
        s = "irc.server." + self.SERVER
        tls = "on" if self.tls_ca else "off"
        commands = [
            "/set logger.file.flush_delay 0",
            "/set logger.file.path %s" % self.logs,
            "/set fifo.file.path %s" % self.fifo,
            "/set irc.look.nick_mode none",
            "/server add %s %s/%d" % (self.SERVER, self.host, self.port),
            # ssl in WeeChat 3.8 (Debian 12), tls from 4.0 (default on):
            # one of the two is not an option, and says so in the core log.
            "/set %s.ssl %s" % (s, tls),
            "/set %s.tls %s" % (s, tls),
        ]
        if self.tls_ca:
            commands += [
                "/set %s.ssl_verify on" % s,
                "/set %s.tls_verify on" % s,
                "/set weechat.network.gnutls_ca_system off",
                "/set weechat.network.gnutls_ca_user %s" % self.tls_ca,
            ]
        if self.sasl:
            mechanism, account, password = self.sasl
            commands += [
                "/set %s.sasl_mechanism %s" % (s, mechanism),
                "/set %s.sasl_username %s" % (s, account),
                "/set %s.sasl_password %s" % (s, password),
                "/set %s.sasl_fail disconnect" % s,
            ]
        commands += [
            "/set %s.nicks %s" % (s, self.nick),
            "/set %s.username %s" % (s, self.nick),
            "/set %s.realname weechat-test" % s,
            "/set %s.autoreconnect off" % s,
            # No anti-flood queue (by default a line every 2 s after the
            # first burst): prio_high/low in 3.8, anti_flood (ms) from 4.0.
            "/set %s.anti_flood_prio_high 0" % s,
            "/set %s.anti_flood_prio_low 0" % s,
            "/set %s.anti_flood 0" % s,
            '/set %s.command "/print -core %s"' % (s, self.REGISTERED),
            "/connect " + self.SERVER,
        ]
        for c in commands:
            if ";" in c:
                raise ValueError("no ';' in a WeeChat startup command: %r" % c)
        self._spawn([which("weechat-headless"), "--dir", self.dir, "--stdout",
                     "-P", "irc,logger,fifo", "--no-script",
                     "--run-command", ";".join(commands)],
                    env=dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8"))

    def _log(self, name):
        return os.path.join(self.logs, name.lower() + ".weechatlog")

    def _buffer(self, channel):
        return "irc.server." + self.SERVER if channel is None else "irc.%s.%s" % (self.SERVER, channel)

    def lines(self, where=None):
        """Logged lines of a channel (None: the server buffer; "core": the
        core buffer), as PREFIX<TAB>MESSAGE."""
        if where == "core":
            name = "core.weechat"
        else:
            name = self._buffer(where)
        return [l.split("\t", 1)[1] if "\t" in l else l for l in read_lines(self._log(name))]

    def more_to_dump(self, where):
        core = [l for l in self.lines("core") if not l.startswith("\tOption changed: ")]
        # Its stdout is mostly the files it reads and writes, and a few
        # terminal modes it sets: the end is enough.
        out = [re.sub(r"\x1b\[[?0-9;]*[a-zA-Z]", "", l) for l in self.output()[-5:]]
        return ([("its server buffer", self.lines(None)[-30:])] if where is not None else []) + \
            [("its core buffer", core[-15:]), ("its output", out)]

    def command(self, text, where=None):
        """Runs text (a command, or a line to say) in the buffer of channel
        `where` (None: the server buffer)."""
        write_fifo(self.fifo, "%s *%s" % (self._buffer(where), text), self.timeout)

    def wait_registered(self):
        self.wait_for("^\t" + re.escape(self.REGISTERED) + "$", "core", what="its registration")

    def join(self, channel):
        """Joins; returns once the client shows itself joined."""
        mark = self.mark(channel)
        self.command("/join " + channel)
        self.wait_joined(channel, self.nick, start=mark)

    def say(self, channel, text):
        if text.startswith("/"):
            raise ValueError("text starting with / is a command in WeeChat: %r" % text)
        self.command(text, channel)

    def me(self, channel, text):
        self.command("/me " + text, channel)

    def change_nick(self, new):
        """Changes nick; returns once the client shows the change."""
        mark = self.mark()
        self.command("/nick " + new)
        self.wait_for(r"^--\tYou are now known as %s$" % re.escape(new), None, mark,
                      what="its own nick change to %s" % new)
        self.nick = new

    def topic(self, channel, text):
        self.command("/topic " + text, channel)

    def part(self, channel, reason=None):
        self.command("/part" + ("" if reason is None else " " + reason), channel)

    def _quit(self, reason):
        self.command("/quit " + reason)

    def quit(self, reason="bye"):
        """Quits (QUIT to the server, then WeeChat exits); waits for the
        exit."""
        self._quit(reason)
        self.proc.wait(self.timeout)


# ---- ii ----------------------------------------------------------------

class Ii(IrcClient):
    """ii: a tree of FIFOs and files, DIR/HOST/{in,out} for the server and
    DIR/HOST/CHANNEL/{in,out} for each channel. ii writes every line the
    server sends to its stdout, with the time (`EPOCH RAWLINE`): that shows
    registration (001). `out` lines are `EPOCH TEXT`; lines() gives the
    text. ii 1.8, as shown in its out files:
      said     <nick> text          (own lines too)
      action   <nick> \\x01ACTION text\\x01   (ii has no /me: sent raw)
      join     -!- nick(user@host) has joined #c
      part     -!- nick(user@host) has left #c  (not its own: it closes the channel)
      topic    -!- nick changed topic to "text"
      nick     -!- old changed nick to new, in the SERVER out (a NICK has no
               channel); its own: -!- changed nick to "new"
      quit     -!- nick(user@host) has quit "reason", in the server out.
    It only understands the text of a PRIVMSG, NICK or TOPIC after a ':'
    and only treats a line as from a user when its prefix is nick!user@host."""

    NAME = "ii"
    BINARIES = ("ii",)
    PACKAGES = "ii"
    FORMATS = {
        "said": ("channel", r"^<{nick}> {text}$"),
        "action": ("channel", "^<{nick}> \x01ACTION {text}\x01$"),
        "joined": ("channel", r"^-!- {nick}\(.*\) has joined {channel}$"),
        "parted": ("channel", r"^-!- {nick}\(.*\) has left {channel}$"),
        "quit": ("server", r'^-!- {nick}\(.*\) has quit ".*"$'),
        "nick": ("server", r"^-!- {old} changed nick to {new}$"),
        "own_nick": ("server", r'^-!- changed nick to "{new}"$'),
        "topic": ("channel", r'^-!- {nick} changed topic to "{text}"$'),
        # A numeric is shown in the server out as its parameters after the
        # first (the nick), then the text.
        "topic_shown": ("server", r"^{channel} ?{text}$"),
    }

    def _launch(self):
        self._spawn([which("ii"), "-s", self.host, "-p", str(self.port), "-n", self.nick,
                     "-i", self.dir, "-f", "ii-test"])

    def _path(self, channel, name):
        parts = [self.dir, self.host] + ([] if channel is None else [channel.lower()])
        return os.path.join(*(parts + [name]))

    def lines(self, where=None):
        return [l.split(" ", 1)[1] if " " in l else "" for l in read_lines(self._path(where, "out"))]

    def raw(self):
        """Every line the server sent, as ii received it (without its time)."""
        return [l.split(" ", 1)[1].rstrip("\r") for l in self.output() if re.match(r"\d+ ", l)]

    def more_to_dump(self, where):
        return ([("its server out", self.lines(None)[-30:])] if where is not None else []) + \
            [("the lines the server sent it", self.raw()[-30:])]

    def wait_registered(self):
        deadline = time.monotonic() + self.timeout
        rx001 = re.compile(r"^(@\S+ )?:\S+ 001 ")
        while not any(rx001.match(l) for l in self.raw()):
            if not self._alive() or time.monotonic() > deadline:
                raise AssertionError("ii was not registered (no 001)%s; %s"
                                     % (" and has ended" if not self._alive() else "", self.dump()))
            time.sleep(POLL)

    def command(self, line, where=None):
        """Writes a line to the `in` FIFO of channel `where` (None: the
        server's): text to say, an ii command (/j /l /n /t /a /q), or a raw
        IRC command (any other /COMMAND ...)."""
        write_fifo(self._path(where, "in"), line, self.timeout)

    def join(self, channel):
        mark = self.mark(channel)
        self.command("/j " + channel)
        self.wait_joined(channel, self.nick, start=mark)

    def say(self, channel, text):
        if text.startswith("/"):
            raise ValueError("text starting with / is a command in ii: %r" % text)
        self.command(text, channel)

    def me(self, channel, text):
        self.command("/PRIVMSG %s :\x01ACTION %s\x01" % (channel, text), channel)

    def change_nick(self, new):
        mark = self.mark()
        self.command("/n " + new)
        self.wait_for(rx(self.FORMATS["own_nick"][1], new=new), None, mark,
                      what="its own nick change to %s" % new)
        self.nick = new

    def topic(self, channel, text):
        self.command("/t " + text, channel)

    def part(self, channel, reason=None):
        self.command("/l" + ("" if reason is None else " " + reason), channel)

    def _quit(self, reason):
        self.command("/q " + reason)

    def quit(self, reason="bye"):
        self._quit(reason)
        self.proc.wait(self.timeout)


# ---- irssi in tmux -------------------------------------------------------

class Irssi(IrcClient):
    """irssi on the terminal of a private tmux server (its own socket in the
    temporary directory, a 200x50 window, no status line), with a home of
    its own: a config with one server (autoconnect, no TLS), and irssi's
    command queue not throttled (cmdspeed 1 ms: by default irssi sends a
    queued command every 2.2 s, so its channel sync would take 7 s). What
    it shows is the screen of its active window (capture-pane); its raw
    traffic goes to a file (/rawlog open, run on connecting: registered).
    """

    NAME = "irssi"
    BINARIES = ("irssi", "tmux")
    PACKAGES = "irssi tmux"
    COLS, ROWS = 200, 50
    T = r"^\d\d:\d\d "
    FORMATS = {
        "said": ("channel", T + r"<[ @%+~&]?{nick}> {text}$"),
        "action": ("channel", T + r" \* {nick} {text}$"),
        "joined": ("channel", T + r"-!- {nick} \[.*\] has joined {channel}$"),
        "parted": ("channel", T + r"-!- {nick} \[.*\] has left {channel}( \[.*\])?$"),
        "quit": ("channel", T + r"-!- {nick} \[.*\] has quit( \[.*\])?$"),
        "nick": ("channel", T + r"-!- {old} is now known as {new}$"),
        "own_nick": ("channel", T + r"-!- You're now known as {new}$"),
        "topic": ("channel", T + r"-!- {nick} changed the topic of {channel} to: {text}$"),
        "topic_shown": ("channel", T + r"-!- Topic for {channel}: {text}$"),
    }
    SYNCED = T + r"-!- Irssi: Join to {channel} was synced in \d+ secs?$"

    def _launch(self):
        d = self.dir
        self.sock = os.path.join(d, "tmux.sock")
        self.rawlog = os.path.join(d, "raw.log")
        home = os.path.join(d, "home")
        os.mkdir(home)
        quote = lambda s: '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')
        with open(os.path.join(home, "config"), "w") as f:
            f.write(
                "servers = (\n"
                "  { address = %s; chatnet = \"chatdtest\"; port = \"%d\";\n"
                "    use_tls = \"no\"; tls_verify = \"no\"; autoconnect = \"yes\"; }\n"
                ");\n"
                "chatnets = {\n"
                "  chatdtest = { type = \"IRC\"; autosendcmd = %s;\n"
                "    cmdspeed = \"1\"; cmdmax = \"100\"; };\n"
                "};\n"
                "settings = {\n"
                "  core = { real_name = \"irssi-test\"; user_name = %s; nick = %s;\n"
                "    settings_autosave = \"no\"; };\n"
                "  \"fe-common/core\" = { autolog = \"no\"; };\n"
                "};\n" % (quote(self.host), self.port, quote("/rawlog open " + self.rawlog),
                          quote(self.nick), quote(self.nick)))
        with open(os.path.join(d, "tmux.conf"), "w") as f:
            f.write("set -g status off\n"
                    "set -g default-terminal screen-256color\n"
                    "set -g history-limit 0\n")
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        # irssi warns of display glitches in tmux unless TERM is screen* or
        # tmux*; screen-256color is in ncurses-base, always installed.
        self.env.update(HOME=home, TERM="screen-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.tmux("new-session", "-d", "-s", "irc", "-x", str(self.COLS), "-y", str(self.ROWS),
                  "exec %s --home=%s" % (shlex.quote(which("irssi")), shlex.quote(home)))
        self.irssi_pid = int(self.tmux("display-message", "-p", "-t", "irc", "#{pane_pid}"))
        self.tmux_pid = int(self.tmux("display-message", "-p", "#{pid}"))

    def tmux(self, *args):
        r = subprocess.run([which("tmux"), "-u", "-S", self.sock, "-f",
                            os.path.join(self.dir, "tmux.conf")] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, env=self.env,
                           timeout=self.timeout)
        if r.returncode != 0:
            raise AssertionError("tmux %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode("utf-8", "replace")

    def _alive(self):
        return alive(self.irssi_pid)

    def running(self):
        return hasattr(self, "irssi_pid") and alive(self.irssi_pid)

    def lines(self, where=None):
        """The screen of irssi's active window (where is ignored: irssi shows
        one window at a time; join() and say() switch to the channel's),
        wrapped lines joined."""
        try:
            return self.tmux("capture-pane", "-p", "-J", "-t", "irc").rstrip("\n").split("\n")
        except (AssertionError, subprocess.TimeoutExpired):
            return []

    def raw(self):
        """irssi's raw log: `<< LINE` sent, `>> LINE` received."""
        return read_lines(self.rawlog)

    def more_to_dump(self, where):
        return [("its raw log", self.raw()[-40:])]

    def type(self, text):
        """Types text and Enter on irssi's terminal."""
        self.tmux("send-keys", "-t", "irc", "-l", text)
        self.tmux("send-keys", "-t", "irc", "Enter")

    def wait_registered(self):
        deadline = time.monotonic() + self.timeout
        while not any(re.match(r">> (@\S+ )?:\S+ 001 ", l) for l in self.raw()):
            if not self._alive() or time.monotonic() > deadline:
                raise AssertionError("irssi was not registered%s; %s" % (
                    " and has ended" if not self._alive() else "", self.dump()))
            time.sleep(POLL)

    def window(self, channel):
        self.type("/window goto " + channel)

    def join(self, channel):
        """Joins (irssi switches to the channel's window); returns once it
        shows itself joined. Then see wait_synced()."""
        self.join_mark = len(self.raw())
        self.type("/join " + channel)
        self.wait_joined(channel, self.nick)

    def wait_synced(self, channel, timeout=None):
        """Waits for `Join to CHANNEL was synced in N secs` and returns the
        sync's exchange (sync_exchange); raises when a query of the sync
        got an error or no answer."""
        self.wait_for(rx(self.SYNCED, channel=channel), None, 0, timeout,
                      what="the sync of %s" % channel)
        ex = self.sync_exchange(channel)
        if ex["errors"] or ex["unanswered"]:
            raise AssertionError("irssi's sync of %s: errors %r, unanswered %r; %s"
                                 % (channel, ex["errors"], ex["unanswered"], self.dump()))
        return ex

    def sync_exchange(self, channel):
        """What irssi asked for the sync of channel since join() and what
        the server answered, from the raw log: {"sent": the queries (MODE
        #c, WHO #c, MODE #c b ...), "replies": the numerics received, in
        order, "errors": lines with an error numeric (400-599) received,
        "unanswered": queries without their end reply (324 for MODE, 315
        for WHO, 368 for MODE b)}."""
        raw = self.raw()[getattr(self, "join_mark", 0):]
        ch = re.escape(channel)
        sent = [l[3:] for l in raw if re.match(r"<< (MODE|WHO) %s\b" % ch, l, re.I)]
        replies, errors = [], []
        for l in raw:
            m = re.match(r">> (?:@\S+ )?:\S+ (\d{3}) ", l)
            if m:
                replies.append(m.group(1))
                if 400 <= int(m.group(1)) < 600:
                    errors.append(l[3:])
        ends = {"MODE": "324", "WHO": "315", "MODE b": "368"}
        unanswered = []
        for q in sent:
            words = q.split()
            key = "MODE b" if words[0].upper() == "MODE" and words[2:3] == ["b"] else words[0].upper()
            if ends.get(key) not in replies:
                unanswered.append(q)
        return {"sent": sent, "replies": replies, "errors": errors, "unanswered": unanswered}

    def say(self, channel, text):
        self.window(channel)
        self.type(("/say " + text) if text.startswith("/") else text)

    def me(self, channel, text):
        self.window(channel)
        self.type("/me " + text)

    def change_nick(self, new):
        self.type("/nick " + new)
        self.wait_for(rx(self.FORMATS["own_nick"][1], new=new), what="its own nick change")
        self.nick = new

    def topic(self, channel, text):
        self.window(channel)
        self.type("/topic " + text)

    def part(self, channel, reason=None):
        self.type("/part %s%s" % (channel, "" if reason is None else " " + reason))

    def _quit(self, reason):
        self.type("/quit " + reason)

    def quit(self, reason="bye"):
        self._quit(reason)
        deadline = time.monotonic() + self.timeout
        while alive(self.irssi_pid):
            if time.monotonic() > deadline:
                raise AssertionError("irssi did not quit")
            time.sleep(POLL)

    def close(self):
        """/quit, then the tmux server is killed (its pane's irssi gets a
        hang-up), and irssi and the tmux server are killed if they are still
        there a few seconds later (neither is this process's child: the tmux
        server is a daemon, irssi its child)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.running():
                try:
                    self._quit("closing")
                except (OSError, AssertionError, subprocess.TimeoutExpired):
                    pass
                deadline = time.monotonic() + QUIT_GRACE
                while alive(self.irssi_pid) and time.monotonic() < deadline:
                    time.sleep(POLL)
            if os.path.exists(getattr(self, "sock", "")):
                subprocess.run([which("tmux"), "-S", self.sock, "kill-server"], env=self.env,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=self.timeout)
                for pid in (getattr(self, "irssi_pid", None), getattr(self, "tmux_pid", None)):
                    if pid is None:
                        continue
                    deadline = time.monotonic() + 2
                    while alive(pid) and time.monotonic() < deadline:
                        time.sleep(POLL)
                    if alive(pid):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
        finally:
            self.tmp.cleanup()


# ---- a python3-irc bot ---------------------------------------------------

def irc_python():
    """A Python that can import python3-irc's `irc` package: this one, or
    Debian's /usr/bin/python3 (which has it, installed by apt, when this one
    is another, e.g. from pyenv); None when neither can."""
    candidates = [sys.executable, "/usr/bin/python3"]
    for py in candidates:
        if not py or not os.path.exists(py):
            continue
        try:
            r = subprocess.run([py, "-c", "import irc.bot, irc.client"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            continue
        if r.returncode == 0:
            return py
    return None


class Bot(IrcClient):
    """A bot on python3-irc (irc.bot.SingleServerIRCBot), this file run as
    a script in a subprocess: it joins one channel and answers `!ping` in a
    channel, or in private, with `pong NICK`. What it did is its output,
    one line an event: `registered NICK`, `joined CHANNEL`, `heard TARGET
    NICK TEXT`, `answered TARGET TEXT`, `disconnected`; and `< LINE` for
    every line the server sent."""

    NAME = "python3-irc bot"
    BINARIES = ()
    _python = False

    @classmethod
    def missing(cls):
        if cls._python is False:
            Bot._python = irc_python()
        return None if cls._python else \
            "python3-irc is not installed (no python3 imports irc.bot; apt-get install python3-irc)"

    def __init__(self, host, port, nick, channel, timeout=TIMEOUT):
        IrcClient.__init__(self, host, port, nick, timeout)
        self.channel = channel

    def _launch(self):
        if self.missing():
            raise AssertionError(self.missing())
        self._spawn([self._python, "-u", os.path.abspath(__file__), "bot", self.host,
                     str(self.port), self.nick, self.channel],
                    env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))

    def lines(self, where=None):
        return read_lines(os.path.join(self.dir, "output"))

    def more_to_dump(self, where):
        return []  # its output is lines()

    def wait_registered(self):
        self.wait_for(r"^registered ", what="its registration")

    def wait_joined_channel(self):
        self.wait_for(r"^joined %s$" % re.escape(self.channel), what="its join")

    def wait_answered(self, text, start=0):
        return self.wait_for(r"^answered \S+ %s$" % re.escape(text), start=start,
                             what="its answer %r" % text)

    def _quit(self, reason):
        self.proc.send_signal(signal.SIGTERM)  # it sends QUIT, then exits


def run_bot(host, port, nick, channel):
    """The bot of class Bot, in this process (python3-irc, any version from
    8.5 on): answers !ping until SIGTERM, then quits."""
    import irc.bot
    import irc.client

    # Lines that are not UTF-8 must not kill the bot.
    irc.client.ServerConnection.buffer_class.errors = "replace"
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))

    def say(*words):
        print(*words, flush=True)

    class PingBot(irc.bot.SingleServerIRCBot):
        def on_all_raw_messages(self, c, e):
            say("<", e.arguments[0])

        def on_welcome(self, c, e):
            say("registered", c.get_nickname())
            c.join(channel)

        def on_nicknameinuse(self, c, e):
            c.nick(c.get_nickname() + "_")

        def on_join(self, c, e):
            if e.source.nick == c.get_nickname():
                say("joined", e.target)

        def answer(self, c, e, target):
            text = e.arguments[0]
            say("heard", e.target, e.source.nick, text)
            if text.strip() == "!ping":
                reply = "pong " + e.source.nick
                c.privmsg(target, reply)
                say("answered", target, reply)

        def on_pubmsg(self, c, e):
            self.answer(c, e, e.target)

        def on_privmsg(self, c, e):
            self.answer(c, e, e.source.nick)

        def on_disconnect(self, c, e):
            say("disconnected")
            stop.append(1)

    bot = PingBot([(host, int(port))], nick, "python3-irc test bot")
    bot.connect(host, int(port), nick, ircname="python3-irc test bot")  # raises when it cannot
    loop = getattr(bot, "reactor", None) or bot.ircobj  # ircobj before python3-irc 9
    while not stop:
        loop.process_once(0.2)
    if bot.connection.is_connected():
        bot.connection.quit("bye")
        loop.process_once(0.2)
        bot.connection.disconnect()


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "bot":
        run_bot(*sys.argv[2:])
    else:
        sys.exit("usage: %s bot HOST PORT NICK CHANNEL" % sys.argv[0])
