// A stand-in for the seed service's browser chat page, for compatibility tests.
//
// mfu-chat serve must keep working with the original MFU Learn AI web client (the
// "seed"). A browser is too heavy for the suite, so this program reproduces what
// that page puts on the wire, and nothing more: its WebSocket manager (URL,
// heartbeat, reconnect policy) and the frames and REST calls its Chat page makes.
// It is our own code, written from the facts listed in tests/support/seed_client.py.
//
// The tests drive it over a line protocol: one JSON command per line on stdin,
// one JSON event per line on stdout (see handle() below for the commands). Nothing
// else goes to stdout; diagnostics go to stderr.
//
// Environment: MFU_WS_URL (the page's VITE_WS_URL), MFU_API_URL (the base its REST
// paths are appended to), MFU_TOKEN (what the page keeps in localStorage.authToken;
// unset = logged out), MFU_ORIGIN (the page's origin, sent as a browser would).
// For tests only: MFU_SEED_HEARTBEAT_MS, MFU_SEED_RECONNECT_DELAY_MS and
// MFU_SEED_CONNECT_TIMEOUT_MS shorten the seed's timings; MFU_SEED_PAGE_REST=1 makes
// the page's own REST reaction to a frame too (the chat list reload on chat_updated),
// off by default so a test without an HTTP API sees only what it asked for.

import { createInterface } from 'node:readline'
import WebSocket from 'ws'

function milliseconds(name, seedValue) {
  const value = process.env[name]
  return value ? Number(value) : seedValue
}

const WS_BASE = process.env.MFU_WS_URL || 'ws://localhost:5001'
const API_BASE = process.env.MFU_API_URL || 'http://localhost:5000'
// The seed's timings: a JSON ping every 25 s, reconnect after 1 s x attempt, at
// most 5 attempts, and a connection still handshaking after 10 s is given up.
const HEARTBEAT_MS = milliseconds('MFU_SEED_HEARTBEAT_MS', 25_000)
const RECONNECT_DELAY_MS = milliseconds('MFU_SEED_RECONNECT_DELAY_MS', 1_000)
const CONNECT_TIMEOUT_MS = milliseconds('MFU_SEED_CONNECT_TIMEOUT_MS', 10_000)
const MAX_RECONNECT_ATTEMPTS = 5
// A browser always sends Origin on the upgrade; which one depends on where the page
// was served, so a test may choose it.
const ORIGIN = process.env.MFU_ORIGIN || new URL(API_BASE).origin
const PAGE_REST = process.env.MFU_SEED_PAGE_REST === '1'

// localStorage.authToken: the page drops it when a REST call gets 401.
let token = process.env.MFU_TOKEN || null

function emit(event) {
  // Synchronous on a pipe under Linux, so nothing is lost when we exit right after.
  process.stdout.write(JSON.stringify(event) + '\n')
}

// The seed's WebSocket manager, quirks included: they are part of what the server
// sees. Each socket gets a number (`conn` in the events) because a second
// connect() does not close the first socket, whose frames keep arriving.
class SeedSocketManager {
  constructor() {
    this.ws = null
    this.chatId = null
    this.reconnectAttempts = 0
    this.isReconnecting = false
    this.heartbeat = null
    this.sockets = new Set()
    this.lastConn = 0
    // The seed starts its heartbeat timer when the manager is made, before any socket.
    this.startHeartbeat()
  }

  url(chatId) {
    // Both `ws://host:5001` and `ws://host:5001/ws` work: the seed strips `/ws`, then adds it.
    const base = WS_BASE.replace(/\/ws$/, '').replace(/\/$/, '')
    let url = `${base}/ws?token=${encodeURIComponent(token)}`
    if (chatId) url += `&chat=${encodeURIComponent(chatId)}`
    return url
  }

  connect(chatId) {
    return new Promise((resolve, reject) => {
      this.chatId = chatId || null
      if (!token) {
        reject(new Error('No authentication token found'))
        return
      }
      const conn = ++this.lastConn
      // The token rides in the query string only: a browser cannot set headers here.
      const ws = new WebSocket(this.url(chatId), { origin: ORIGIN })
      this.ws = ws
      this.sockets.add(ws)

      ws.on('open', () => {
        this.reconnectAttempts = 0
        this.isReconnecting = false
        this.startHeartbeat()
        emit({ event: 'open', conn, chatId: chatId || null })
        resolve()
      })
      ws.on('message', (data, isBinary) => {
        // The page JSON-parses every frame (a binary one arrives as a Blob and fails),
        // hands a parse failure to its error handler, and swallows pongs: we report
        // every frame, pongs too, so tests see all the server sent.
        const text = data.toString()
        let frame
        try {
          if (isBinary) throw new Error('binary frame')
          frame = JSON.parse(text)
        } catch (error) {
          emit({ event: 'error', conn, message: `unparsable frame: ${error.message}`, text })
          return
        }
        emit({ event: 'frame', conn, frame })
        page.onFrame(frame)
      })
      ws.on('error', (error) => emit({ event: 'error', conn, message: error.message }))
      ws.on('close', (code, reason) => {
        this.sockets.delete(ws)
        // Any socket's close stops the one heartbeat, even an older, leaked socket's.
        this.stopHeartbeat()
        emit({ event: 'close', conn, code, reason: reason.toString() })
        // Everything but a normal close is retried, unless a retry is already pending
        // (or the page is gone: a closed tab runs no more code).
        if (!exiting && code !== 1000 && !this.isReconnecting && this.reconnectAttempts < MAX_RECONNECT_ATTEMPTS) {
          this.reconnect()
        }
      })

      // Checks whichever socket is current by then, as the seed does.
      setTimeout(() => {
        if (this.ws?.readyState === WebSocket.CONNECTING) {
          this.ws.close()
          reject(new Error('WebSocket connection timeout'))
        }
      }, CONNECT_TIMEOUT_MS)
    })
  }

  reconnect() {
    if (this.isReconnecting) return
    this.isReconnecting = true
    this.reconnectAttempts++
    const delayMs = RECONNECT_DELAY_MS * this.reconnectAttempts
    emit({ event: 'reconnecting', attempt: this.reconnectAttempts, delayMs })
    // isReconnecting is cleared only by an open (or close()): if this attempt fails
    // to connect, its close does not retry, so in practice a drop gets one attempt.
    setTimeout(() => {
      this.connect(this.chatId || undefined).catch((error) => {
        emit({ event: 'error', message: `reconnect failed: ${error.message}` })
        if (this.reconnectAttempts >= MAX_RECONNECT_ATTEMPTS) {
          emit({ event: 'error', message: 'Connection lost and unable to reconnect' })
        }
      })
    }, delayMs)
  }

  startHeartbeat() {
    this.stopHeartbeat()
    // A JSON ping only: the seed does not check that a pong comes back.
    this.heartbeat = setInterval(() => {
      if (this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'ping' })
    }, HEARTBEAT_MS)
  }

  stopHeartbeat() {
    clearInterval(this.heartbeat)
    this.heartbeat = null
  }

  // Only on the current socket, and only while it is open: otherwise the frame is
  // dropped (the page then shows a mock answer and nothing reaches the server).
  send(frame) {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame)
    const ok = this.ws?.readyState === WebSocket.OPEN
    if (ok) this.ws.send(text)
    emit({ event: 'sent', ok, frame })
    return ok
  }

  close() {
    this.isReconnecting = false
    this.stopHeartbeat()
    if (this.ws) {
      this.ws.close(1000, 'Client closing connection')
      this.ws = null
    }
  }

  isConnected() {
    return this.ws?.readyState === WebSocket.OPEN
  }
}

// What the Chat page keeps, where it shapes later frames: its message list, which
// goes out whole with every message it sends.
const page = {
  messages: [],

  onFrame(frame) {
    if (frame === null || typeof frame !== 'object') return
    if (frame.type === 'chunk') {
      // Appended to the last message if that is the same assistant message, else a new one.
      // `model` is the page's selected model as of its first render: always ''.
      const last = this.messages[this.messages.length - 1]
      if (last && last.role === 'assistant' && last.id === frame.messageId) {
        last.content += frame.content
      } else {
        this.messages.push({
          id: frame.messageId, role: 'assistant', content: frame.content, timestamp: new Date(), model: '',
        })
      }
    } else if (frame.type === 'message_edited') {
      for (const message of this.messages) {
        if (message.id === frame.messageId) message.content = frame.content
      }
    } else if (frame.type === 'chat_updated' && PAGE_REST) {
      // The page reloads its chat list (no paging parameters) when another tab changed it.
      rest({ id: 'chat_updated', method: 'GET', path: '/api/chat/chats' })
    }
    // Nothing else changes what the page sends: `complete` and `error` only end its
    // spinner, and `chat_created` and `content` are ignored.
  },

  // A user entry as the page makes it: a Date.now() id, serialised with an ISO timestamp.
  userEntry(content) {
    return { id: Date.now().toString(), role: 'user', content, timestamp: new Date() }
  },
}

async function rest({ id = null, method = 'GET', path, body }) {
  // The page's axios instance: JSON, the bearer token when there is one, a 30 s timeout.
  const headers = { Accept: 'application/json, text/plain, */*' }
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let response
  try {
    response = await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
  } catch (error) {
    // fetch() says only "fetch failed"; the cause says what (refused, reset...).
    const cause = error.cause ? `: ${error.cause.message}` : ''
    emit({ event: 'rest', id, status: 0, body: null, error: error.message + cause })
    return
  }
  const text = await response.text()
  let parsed = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // Not JSON: the body stays text.
  }
  // On a 401 the page forgets the token and goes to its login page.
  const loggedOut = response.status === 401 && token !== null
  if (loggedOut) token = null
  emit({ event: 'rest', id, status: response.status, body: parsed, ...(loggedOut ? { loggedOut } : {}) })
}

const manager = new SeedSocketManager()

function handle(command) {
  switch (command.cmd) {
    case 'connect':
      manager.connect(command.chatId).catch((error) => emit({ event: 'error', message: error.message }))
      break
    case 'send': {
      // Given `messages`, they go out as they are; given `content`, the page's own list
      // plus a new user entry, which then joins that list.
      let messages = command.messages
      if (messages === undefined) {
        const entry = page.userEntry(command.content)
        messages = [...page.messages, entry]
        page.messages.push(entry)
      }
      manager.send({ type: 'message', chatId: command.chatId ?? '', messages, modelId: command.modelId })
      break
    }
    case 'cancel':
      manager.send({ type: 'cancel', chatId: command.chatId })
      break
    case 'edit': {
      // Without a messageId: the page's latest user message, as a user would pick it.
      const messageId =
        command.messageId ?? page.messages.filter((m) => m.role === 'user').map((m) => m.id).pop()
      for (const message of page.messages) {
        if (message.id === messageId) message.content = command.content
      }
      manager.send({ type: 'message_edited', chatId: command.chatId, messageId, content: command.content })
      break
    }
    case 'raw':
      manager.send(command.frame)
      break
    case 'rest':
      rest(command)
      break
    case 'history':
      emit({ event: 'history', messages: JSON.parse(JSON.stringify(page.messages)) })
      break
    case 'close':
      manager.close()
      break
    case 'exit':
      exit()
      break
    default:
      emit({ event: 'error', message: `unknown command: ${JSON.stringify(command)}` })
  }
}

let exiting = false

function exit() {
  if (exiting) return
  exiting = true
  manager.stopHeartbeat()
  // Like a closed tab: every socket still open says "going away", then we are gone.
  const open = [...manager.sockets]
  if (open.length === 0) process.exit(0)
  let left = open.length
  for (const ws of open) {
    ws.once('close', () => --left === 0 && process.exit(0))
    ws.close(1001, 'Page closed')
  }
  setTimeout(() => process.exit(0), 2_000).unref()
}

const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  if (!line.trim()) return
  let command
  try {
    command = JSON.parse(line)
  } catch (error) {
    emit({ event: 'error', message: `bad command line: ${error.message}` })
    return
  }
  handle(command)
})
// The test process went away: so do we.
input.on('close', exit)

emit({ event: 'ready', wsUrl: WS_BASE, apiUrl: API_BASE, heartbeatMs: HEARTBEAT_MS })
