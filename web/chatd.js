// chatd's web client: IRC over a WebSocket (the IRCv3 text.ircv3.net
// subprotocol) to the server that served this page. Plain JavaScript, no
// build step, nothing from elsewhere. Everything received is put on the
// page as text (textContent), never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_LINES = 1000;          // kept per window
  const SHOWN_MAX = 300;           // rooms, and people of a room, listed at most
  const BACKOFF_MIN = 1000;        // ms before the first reconnection
  const BACKOFF_MAX = 30000;
  const WANTED_CAPS = ["server-time", "message-tags", "echo-message", "batch", "multi-prefix"];

  // ---- IRC messages -------------------------------------------------------

  function unescapeTag(v) {
    return v.replace(/\\(.)/g, (m, c) => ({ ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" })[c] ?? c);
  }

  // "@tags :prefix COMMAND params :trailing" into its parts.
  function parse(line) {
    const msg = { tags: {}, prefix: "", nick: "", command: "", params: [] };
    let i = 0;
    const word = () => {
      const end = line.indexOf(" ", i);
      const w = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end + 1;
      while (line[i] === " ") i++;
      return w;
    };
    if (line[0] === "@") {
      for (const t of word().slice(1).split(";")) {
        const eq = t.indexOf("=");
        if (eq < 0) msg.tags[t] = "";
        else msg.tags[t.slice(0, eq)] = unescapeTag(t.slice(eq + 1));
      }
    }
    if (line[i] === ":") {
      msg.prefix = word().slice(1);
      msg.nick = msg.prefix.split("!")[0];
    }
    msg.command = word().toUpperCase();
    while (i < line.length) {
      if (line[i] === ":") {
        msg.params.push(line.slice(i + 1));
        break;
      }
      msg.params.push(word());
    }
    return msg;
  }

  // IRC formatting (bold, colours, ...) is dropped: the page shows text.
  function stripFormatting(s) {
    return s.replace(/\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, "");
  }

  const lower = (s) => s.toLowerCase();
  const isRoom = (name) => name.startsWith("#");

  // ---- state --------------------------------------------------------------

  const state = {
    nick: "",          // what we asked for, then what the server says we are
    password: "",
    ws: null,
    registered: false,
    quitting: false,   // the user left: no reconnection
    everRegistered: false,
    backoff: BACKOFF_MIN,
    retryTimer: 0,
    countdown: 0,
    caps: new Set(),
    offered: new Set(),
    batches: new Map(), // open batches: id -> type
    windows: new Map(), // lower(name) -> window
    current: null,
    rooms: new Map(),   // LIST: lower(name) -> {name, count, topic}
    listing: null,      // rooms arriving in a LIST reply
    wanted: [],         // rooms to be in (kept across reconnections)
  };

  function savedRooms() {
    try {
      const r = JSON.parse(localStorage.getItem("chatd.rooms") || "[]");
      return Array.isArray(r) ? r.filter((x) => typeof x === "string" && isRoom(x)) : [];
    } catch (e) {
      return [];
    }
  }

  function saveRooms() {
    const rooms = [...state.windows.values()].filter((w) => w.kind === "room").map((w) => w.name);
    localStorage.setItem("chatd.rooms", JSON.stringify(rooms));
  }

  // ---- windows: the server's, rooms and private conversations ----------------

  function makeWindow(name, kind) {
    const key = lower(name);
    let win = state.windows.get(key);
    if (win) return win;
    const el = document.createElement("div");
    el.className = "lines";
    win = { name, kind, el, members: new Map(), topic: "", unread: 0, mention: false, seen: new Set() };
    state.windows.set(key, win);
    renderWindows();
    return win;
  }

  function findWindow(name) {
    return state.windows.get(lower(name)) || null;
  }

  function serverWindow() {
    return makeWindow("server", "server");
  }

  function show(win) {
    state.current = win;
    win.unread = 0;
    win.mention = false;
    const log = $("log");
    log.replaceChildren(win.el);
    log.scrollTop = log.scrollHeight;
    $("window-name").textContent = win.kind === "server" ? "chatd" : win.name;
    $("topic").textContent = win.topic;
    $("topic").title = win.topic;
    $("side").classList.remove("open");
    renderWindows();
    renderPeople();
    renderRooms();
    $("say-text").focus();
  }

  function closeWindow(win) {
    if (win.kind === "server") return;
    if (win.kind === "room" && state.registered) send(`PART ${win.name}`);
    state.windows.delete(lower(win.name));
    saveRooms();
    if (state.current === win) show(firstWindow());
    else renderWindows();
  }

  function firstWindow() {
    for (const w of state.windows.values()) if (w.kind === "room") return w;
    return serverWindow();
  }

  // A nick's colour: a hue from its letters, the same on every page.
  function nickHue(nick) {
    let h = 0;
    for (const ch of lower(nick)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }

  function nickSpan(nick) {
    const span = document.createElement("span");
    span.className = "nick";
    span.textContent = nick;
    span.style.color = `hsl(${nickHue(nick)} 65% var(--nick-l))`;
    return span;
  }

  function timeOf(msg) {
    const t = msg && msg.tags && msg.tags.time ? new Date(msg.tags.time) : new Date();
    return isNaN(t) ? new Date() : t;
  }

  // A line in WIN: KIND is chat, action, notice, event, server or error.
  function addLine(win, kind, nick, text, msg) {
    const id = msg && msg.tags && msg.tags.msgid;
    if (id) {
      if (win.seen.has(id)) return; // replayed again after a reconnection
      win.seen.add(id);
    }
    const when = timeOf(msg);
    const line = document.createElement("div");
    line.className = `line ${kind}`;
    if (msg && msg.tags && msg.tags.batch && state.batches.get(msg.tags.batch) === "chathistory")
      line.classList.add("history");
    const time = document.createElement("time");
    time.className = "time";
    time.dateTime = when.toISOString();
    time.title = when.toLocaleString();
    time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    line.append(time);
    const body = document.createElement("span");
    body.className = "text";
    text = stripFormatting(text);
    if (kind === "action") {
      line.append(nickSpan(nick));
      body.textContent = text;
    } else if (nick) {
      line.append(nickSpan(kind === "notice" ? `-${nick}-` : nick));
      body.textContent = text;
    } else {
      body.textContent = text;
    }
    line.append(body);
    const mention = nick && lower(nick) !== lower(state.nick) && mentions(text);
    if (mention) line.classList.add("mention");

    const log = $("log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    win.el.append(line);
    while (win.el.childElementCount > MAX_LINES) win.el.firstElementChild.remove();
    if (win === state.current) {
      if (atBottom) log.scrollTop = log.scrollHeight;
    } else if (kind === "chat" || kind === "action" || kind === "notice") {
      win.unread++;
      win.mention ||= mention || win.kind === "query";
      renderWindows();
    }
  }

  function mentions(text) {
    if (!state.nick) return false;
    const n = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return new RegExp(`(^|[^A-Za-z0-9_-])${n}([^A-Za-z0-9_-]|$)`, "i").test(text);
  }

  function note(text, kind = "server") {
    addLine(state.current || serverWindow(), kind, "", text, null);
  }

  // ---- the side panel -----------------------------------------------------

  function li(text, onclick, extra) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = text;
    item.append(name);
    if (extra) {
      const span = document.createElement("span");
      span.className = "count";
      span.textContent = extra;
      item.append(span);
    }
    item.addEventListener("click", onclick);
    return item;
  }

  function renderWindows() {
    const list = $("windows");
    list.replaceChildren();
    for (const win of state.windows.values()) {
      const label = win.kind === "server" ? "server" : win.name;
      const item = li(label, () => show(win), win.unread ? String(win.unread) : "");
      if (win === state.current) item.classList.add("current");
      if (win.mention) item.classList.add("unread");
      if (win.kind !== "server") {
        const close = document.createElement("button");
        close.className = "link";
        close.type = "button";
        close.textContent = " \u00d7";
        close.title = win.kind === "room" ? "Leave the room" : "Close";
        close.addEventListener("click", (e) => {
          e.stopPropagation();
          closeWindow(win);
        });
        item.append(close);
      }
      list.append(item);
    }
  }

  function renderPeople() {
    const list = $("people");
    list.replaceChildren();
    const win = state.current;
    if (!win || win.kind !== "room") {
      $("people-count").textContent = "";
      return;
    }
    const members = [...win.members.values()].sort((a, b) =>
      (b.prefix ? 1 : 0) - (a.prefix ? 1 : 0) || lower(a.nick).localeCompare(lower(b.nick)));
    $("people-count").textContent = String(members.length);
    for (const m of members.slice(0, SHOWN_MAX)) {
      const item = li(m.prefix + m.nick, () => openQuery(m.nick));
      item.style.color = `hsl(${nickHue(m.nick)} 65% var(--nick-l))`;
      list.append(item);
    }
    if (members.length > SHOWN_MAX) list.append(li(`and ${members.length - SHOWN_MAX} more`, () => {}));
  }

  function renderRooms() {
    const list = $("rooms");
    list.replaceChildren();
    const rooms = [...state.rooms.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
    for (const r of rooms.slice(0, SHOWN_MAX)) {
      const item = li(r.name, () => joinRoom(r.name), String(r.count));
      if (r.topic) item.title = stripFormatting(r.topic);
      if (state.current && lower(state.current.name) === lower(r.name)) item.classList.add("current");
      list.append(item);
    }
  }

  function openQuery(nick) {
    if (lower(nick) === lower(state.nick)) return;
    show(makeWindow(nick, "query"));
  }

  function joinRoom(name) {
    name = name.trim();
    if (!name) return;
    if (!isRoom(name)) name = `#${name}`;
    const win = findWindow(name);
    if (win) {
      show(win);
    } else {
      state.joining = name; // shown once in
      send(`JOIN ${name}`);
    }
  }

  // ---- the connection -----------------------------------------------------

  function send(line) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(line);
  }

  function setStatus(text) {
    const el = $("status");
    el.textContent = text;
    el.hidden = !text;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${location.host}/ws`, ["text.ircv3.net"]);
    } catch (e) {
      retry(`cannot connect: ${e.message}`);
      return;
    }
    state.ws = ws;
    state.registered = false;
    state.caps.clear();
    state.offered.clear();
    state.batches.clear();
    setStatus(state.everRegistered ? "Reconnecting\u2026" : "Connecting\u2026");
    ws.onopen = () => {
      send("CAP LS 302");
      send(`NICK ${state.nick}`);
      send(`USER ${state.nick} 0 * :${state.nick} (web)`);
    };
    ws.onmessage = (e) => {
      if (ws !== state.ws) return;
      for (const line of String(e.data).split(/\r?\n/)) if (line) handle(parse(line));
    };
    ws.onclose = () => {
      if (ws !== state.ws) return;
      state.ws = null;
      state.registered = false;
      if (state.quitting) return;
      if (!state.everRegistered) {
        loginError($("login-error").textContent || "cannot reach the server");
        return;
      }
      for (const win of state.windows.values()) win.members.clear();
      renderPeople();
      retry("Disconnected");
    };
  }

  // Reconnects after a growing, slightly random wait.
  function retry(why) {
    const wait = Math.round(state.backoff * (0.75 + Math.random() * 0.5));
    state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX);
    let left = Math.ceil(wait / 1000);
    const tick = () => setStatus(`${why}. Reconnecting in ${left} s\u2026`);
    tick();
    clearInterval(state.countdown);
    state.countdown = setInterval(() => {
      left = Math.max(0, left - 1);
      tick();
    }, 1000);
    state.retryTimer = setTimeout(connect, wait);
  }

  function loginError(text) {
    state.quitting = true;
    if (state.ws) state.ws.close();
    state.ws = null;
    $("chat").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = text;
    $("login-nick").focus();
  }

  function registeredNow() {
    const first = !state.everRegistered;
    state.registered = true;
    state.everRegistered = true;
    state.backoff = BACKOFF_MIN;
    clearInterval(state.countdown);
    setStatus("");
    if (!first) {
      for (const win of state.windows.values()) {
        const sep = document.createElement("div");
        sep.className = "separator";
        sep.textContent = "reconnected";
        win.el.append(sep);
      }
    }
    for (const room of state.wanted) send(`JOIN ${room}`);
    send("LIST");
  }

  // ---- what the server says ------------------------------------------------

  function capList(msg) {
    return msg.params[msg.params.length - 1].split(" ").filter(Boolean);
  }

  function saslPlain() {
    const bytes = new TextEncoder().encode(`${state.nick}\0${state.nick}\0${state.password}`);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin);
  }

  const handlers = {
    PING: (m) => send(`PONG :${m.params[0] || ""}`),
    CAP: (m) => {
      const sub = (m.params[1] || "").toUpperCase();
      if (sub === "LS") {
        for (const c of capList(m)) state.offered.add(c.split("=")[0]);
        if (m.params[2] === "*") return; // more to come
        const want = WANTED_CAPS.filter((c) => state.offered.has(c));
        if (state.password && state.offered.has("sasl")) want.push("sasl");
        if (want.length) send(`CAP REQ :${want.join(" ")}`);
        else send("CAP END");
      } else if (sub === "ACK") {
        for (const c of capList(m)) state.caps.add(c);
        if (state.caps.has("sasl") && state.password) send("AUTHENTICATE PLAIN");
        else send("CAP END");
      } else if (sub === "NAK") {
        send("CAP END");
      }
    },
    AUTHENTICATE: (m) => {
      if (m.params[0] === "+") send(`AUTHENTICATE ${saslPlain()}`);
    },
    903: () => send("CAP END"),
    904: () => loginError("Wrong password, or no such account."),
    905: () => loginError("Wrong password, or no such account."),
    908: () => send("CAP END"),
    "001": (m) => {
      state.nick = m.params[0];
      registeredNow();
    },
    332: (m) => setTopic(m.params[1], m.params[2] || ""),
    331: (m) => setTopic(m.params[1], ""),
    353: (m) => {
      const win = findWindow(m.params[2]);
      if (!win) return;
      if (!win.namesPending) {
        win.members.clear();
        win.namesPending = true;
      }
      for (const entry of (m.params[3] || "").split(" ").filter(Boolean)) {
        const match = /^([@+]*)(.*)$/.exec(entry);
        const nick = match[2].split("!")[0];
        win.members.set(lower(nick), { nick, prefix: match[1] });
      }
    },
    366: (m) => {
      const win = findWindow(m.params[1]);
      if (win) win.namesPending = false;
      if (win === state.current) renderPeople();
    },
    322: (m) => {
      if (!state.listing) state.listing = new Map();
      const name = m.params[1];
      state.listing.set(lower(name), { name, count: Number(m.params[2]) || 0, topic: m.params[3] || "" });
    },
    323: () => {
      state.rooms = state.listing || new Map();
      state.listing = null;
      renderRooms();
    },
    JOIN: (m) => {
      const room = m.params[0];
      if (lower(m.nick) === lower(state.nick)) {
        const win = makeWindow(room, "room");
        if (!state.wanted.some((r) => lower(r) === lower(room))) state.wanted.push(room);
        saveRooms();
        if (!state.current || state.current.kind === "server" || lower(room) === lower(state.joining || ""))
          show(win);
        state.joining = "";
        send("LIST");
        return;
      }
      const win = findWindow(room);
      if (!win) return;
      win.members.set(lower(m.nick), { nick: m.nick, prefix: "" });
      addLine(win, "event", "", `${m.nick} joined`, m);
      if (win === state.current) renderPeople();
    },
    PART: (m) => left(m.params[0], m.nick, m.params[1] ? `${m.nick} left (${m.params[1]})` : `${m.nick} left`, m),
    KICK: (m) => {
      const why = m.params[2] ? ` (${m.params[2]})` : "";
      left(m.params[0], m.params[1], `${m.params[1]} was kicked by ${m.nick}${why}`, m);
    },
    QUIT: (m) => {
      for (const win of state.windows.values()) {
        if (win.members.delete(lower(m.nick)))
          addLine(win, "event", "", `${m.nick} quit${m.params[0] ? ` (${m.params[0]})` : ""}`, m);
      }
      renderPeople();
    },
    NICK: (m) => {
      const to = m.params[0];
      if (lower(m.nick) === lower(state.nick)) {
        state.nick = to;
        note(`You are now ${to}`, "event");
      }
      for (const win of state.windows.values()) {
        const member = win.members.get(lower(m.nick));
        if (!member) continue;
        win.members.delete(lower(m.nick));
        win.members.set(lower(to), { nick: to, prefix: member.prefix });
        addLine(win, "event", "", `${m.nick} is now ${to}`, m);
      }
      const query = findWindow(m.nick);
      if (query && query.kind === "query") {
        state.windows.delete(lower(m.nick));
        query.name = to;
        state.windows.set(lower(to), query);
      }
      renderWindows();
      renderPeople();
    },
    TOPIC: (m) => {
      setTopic(m.params[0], m.params[1] || "");
      const win = findWindow(m.params[0]);
      if (win) addLine(win, "event", "", m.params[1] ? `${m.nick} set the topic: ${m.params[1]}` : `${m.nick} cleared the topic`, m);
    },
    MODE: (m) => {
      const win = findWindow(m.params[0]);
      if (!win || win.kind !== "room") return;
      const modes = m.params[1] || "";
      const target = m.params[2];
      if (target && /^[+-]o$/.test(modes)) {
        const member = win.members.get(lower(target));
        if (member) member.prefix = modes[0] === "+" ? "@" : "";
        if (win === state.current) renderPeople();
      }
      addLine(win, "event", "", `${m.nick} set mode ${m.params.slice(1).join(" ")}`, m);
    },
    PRIVMSG: (m) => message(m, false),
    NOTICE: (m) => message(m, true),
    BATCH: (m) => {
      const ref = m.params[0] || "";
      if (ref[0] === "+") state.batches.set(ref.slice(1), m.params[1]);
      else if (ref[0] === "-") state.batches.delete(ref.slice(1));
    },
    ERROR: (m) => note(m.params[0] || "closing", "error"),
    432: (m) => registrationError(m, "That nick cannot be used"),
    433: (m) => {
      if (!state.registered && !state.everRegistered) {
        registrationError(m, "That nick is taken");
      } else if (!state.registered) {
        state.nick = `${state.nick}_`; // our old connection may linger a while
        send(`NICK ${state.nick}`);
      } else {
        note(`${m.params[1]}: that nick is taken`, "error");
      }
    },
  };

  function registrationError(m, what) {
    const text = `${what}: ${m.params[1] || ""}`;
    if (!state.registered) loginError(text);
    else note(text, "error");
  }

  function setTopic(room, topic) {
    const win = findWindow(room);
    if (!win) return;
    win.topic = stripFormatting(topic);
    if (win === state.current) {
      $("topic").textContent = win.topic;
      $("topic").title = win.topic;
    }
  }

  function left(room, nick, text, m) {
    const win = findWindow(room);
    if (!win) return;
    if (lower(nick) === lower(state.nick)) {
      state.wanted = state.wanted.filter((r) => lower(r) !== lower(room));
      addLine(win, "event", "", text, m);
      win.members.clear();
      if (win === state.current) renderPeople();
      return;
    }
    win.members.delete(lower(nick));
    addLine(win, "event", "", text, m);
    if (win === state.current) renderPeople();
  }

  function message(m, notice) {
    const target = m.params[0] || "";
    let text = m.params[1] || "";
    const fromServer = !m.prefix.includes("!"); // the server's own, not a person's
    let win;
    if (isRoom(target)) {
      win = findWindow(target);
    } else if (fromServer || !state.registered) {
      win = serverWindow();
    } else {
      // A private message: the window of the other person, whichever
      // side said it (our own come back with echo-message).
      const other = lower(m.nick) === lower(state.nick) ? target : m.nick;
      win = notice && !findWindow(other) ? state.current || serverWindow() : makeWindow(other, "query");
    }
    if (!win) return;
    let kind = notice ? "notice" : "chat";
    if (text.startsWith("\x01ACTION ") && text.length > 8) {
      kind = "action";
      text = text.slice(8).replace(/\x01$/, "");
    } else if (text.startsWith("\x01")) {
      return; // other CTCP is not shown
    }
    addLine(win, kind, m.nick || m.prefix, text, m);
  }

  function handle(m) {
    const h = handlers[m.command];
    if (h) {
      h(m);
      return;
    }
    // Numerics: errors to the window in view, the rest to the server's.
    if (/^\d{3}$/.test(m.command)) {
      const text = m.params.slice(1).join(" ");
      const code = Number(m.command);
      if (code >= 400 && code < 600) note(text, "error");
      else if (![2, 3, 4, 5, 251, 252, 253, 254, 255, 265, 266, 375, 376, 321, 329, 333].includes(code))
        addLine(serverWindow(), "server", "", text, m);
    }
  }

  // ---- what the user types ---------------------------------------------------

  const commands = {
    join: (arg) => joinRoom(arg),
    j: (arg) => joinRoom(arg),
    part: (arg) => {
      const win = state.current;
      if (win && win.kind === "room") {
        send(arg ? `PART ${win.name} :${arg}` : `PART ${win.name}`);
        closeWindow(win);
      }
    },
    me: (arg) => target() && arg && send(`PRIVMSG ${target()} :\x01ACTION ${arg}\x01`),
    msg: (arg) => {
      const sp = arg.indexOf(" ");
      if (sp < 1) return note("usage: /msg NICK MESSAGE", "error");
      const nick = arg.slice(0, sp);
      openQuery(nick);
      send(`PRIVMSG ${nick} :${arg.slice(sp + 1)}`);
    },
    query: (arg) => arg && openQuery(arg.split(" ")[0]),
    nick: (arg) => arg && send(`NICK ${arg.split(" ")[0]}`),
    topic: (arg) => {
      const win = state.current;
      if (!win || win.kind !== "room") return note("/topic works in a room", "error");
      send(arg ? `TOPIC ${win.name} :${arg}` : `TOPIC ${win.name}`);
    },
    names: () => state.current && state.current.kind === "room" && send(`NAMES ${state.current.name}`),
    list: () => send("LIST"),
    quote: (arg) => arg && send(arg),
    // Accounts, through NickServ (its answers come as notices).
    register: (arg) => (arg ? send(`PRIVMSG NickServ :REGISTER ${arg}`)
                            : note("usage: /register PASSWORD (registers your nick)", "error")),
    identify: (arg) => (arg ? send(`PRIVMSG NickServ :IDENTIFY ${arg}`)
                            : note("usage: /identify [NICK] PASSWORD", "error")),
    quit: (arg) => {
      state.quitting = true;
      send(arg ? `QUIT :${arg}` : "QUIT");
      setTimeout(() => location.reload(), 300);
    },
    help: () => {
      for (const line of [
        "/join #room, /part [why], /me does something, /msg nick text, /query nick,",
        "/nick name, /topic [text], /names, /list, /quote RAW IRC LINE, /quit [why];",
        "/register PASSWORD registers your nick, /identify [nick] PASSWORD logs in to it",
        "(or give the password when you log in).",
        "Start a message with // to send a line that begins with /.",
      ]) note(line);
    },
  };

  function target() {
    const win = state.current;
    return win && win.kind !== "server" ? win.name : "";
  }

  function say(text) {
    if (!text) return;
    if (text.startsWith("/") && !text.startsWith("//")) {
      const sp = text.indexOf(" ");
      const name = lower(sp < 0 ? text.slice(1) : text.slice(1, sp));
      const arg = sp < 0 ? "" : text.slice(sp + 1).trim();
      const cmd = commands[name];
      if (cmd) cmd(arg);
      else note(`/${name}: no such command (try /help)`, "error");
      return;
    }
    if (text.startsWith("//")) text = text.slice(1);
    const to = target();
    if (!to) return note("Join a room first: /join #lobby", "error");
    if (!state.registered) return note("Not connected: the line was not sent", "error");
    send(`PRIVMSG ${to} :${text}`);
    if (!state.caps.has("echo-message")) addLine(state.current, "chat", state.nick, text, null);
  }

  // ---- the page ----------------------------------------------------------------

  // The toggle's choice, else the system's (followed as it changes).
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

  function applyTheme() {
    const chosen = localStorage.getItem("chatd.theme");
    document.documentElement.dataset.theme = chosen || (systemDark.matches ? "dark" : "light");
  }

  function start() {
    $("login-nick").value = localStorage.getItem("chatd.nick") || "";
    const rooms = savedRooms();
    if (rooms.length) $("login-room").value = rooms[0];

    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      state.nick = $("login-nick").value.trim();
      state.password = $("login-password").value;
      if (!state.nick) return;
      let room = $("login-room").value.trim();
      if (room && !isRoom(room)) room = `#${room}`;
      state.wanted = [...new Set([room, ...savedRooms()].filter(Boolean))];
      state.joining = room;
      localStorage.setItem("chatd.nick", state.nick);
      $("login-error").textContent = "";
      $("login").hidden = true;
      $("chat").hidden = false;
      state.quitting = false;
      state.everRegistered = false;
      show(serverWindow());
      connect();
    });
    $("say").addEventListener("submit", (e) => {
      e.preventDefault();
      const input = $("say-text");
      say(input.value);
      input.value = "";
    });
    $("join-form").addEventListener("submit", (e) => {
      e.preventDefault();
      joinRoom($("join-name").value);
      $("join-name").value = "";
    });
    $("refresh-rooms").addEventListener("click", () => send("LIST"));
    $("toggle-side").addEventListener("click", () => $("side").classList.toggle("open"));
    $("toggle-theme").addEventListener("click", () => {
      const dark = document.documentElement.dataset.theme === "dark";
      localStorage.setItem("chatd.theme", dark ? "light" : "dark");
      applyTheme();
    });
    $("login-nick").focus();
  }

  applyTheme(); // at once, not at DOMContentLoaded: no flash of the other theme
  systemDark.addEventListener("change", applyTheme);
  document.addEventListener("DOMContentLoaded", start);
})();
