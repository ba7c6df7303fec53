#!/usr/bin/env node
'use strict';
/*
 * Bot API emulator for Komek's end-to-end tests.
 *
 * Starts telegram-test-api 4.2.1 (npm, installed by `npm ci --prefix tests/botapi`) and patches the
 * server object at run time so that python-telegram-bot 22 can talk to it as to the real Bot API.
 * The package on disk is never modified.
 *
 *   node launcher.js [--port N] [--host 127.0.0.1] [--bot-username NAME] [--bot-first-name NAME]
 *                    [--exit-on-stdin-close] [--verbose]
 *   env: BOTAPI_PORT, BOTAPI_HOST, BOTAPI_BOT_USERNAME, BOTAPI_BOT_FIRST_NAME, BOTAPI_VERBOSE=1
 *
 * Port 0 picks a free port. Once listening, exactly one line `READY <port>` is printed on stdout;
 * everything else goes to stderr.
 *
 * How it is patched: telegram-test-api registers its express routes in its constructor. We wrap its
 * express app (`server.webServer`) in an outer express app, *before* `server.start()` creates the
 * HTTP server from it. The outer app answers every bot method (`/bot<token>/<method>`) and the
 * simulated-user routes with Bot API shapes, and keeps using the package's storage
 * (`server.storage`), counters (`updateId`, `messageId`, `callbackId`), events and
 * `addBotMessage()`. Only the package's read-only client routes (`/getUpdates`,
 * `/getUpdatesHistory`) still reach its own handlers. `TelegramServer.formatUpdate` is replaced so
 * that anything the package formats itself has Bot API shapes too.
 *
 * Routes (all answers are JSON):
 *   /bot<token>/<method>   the Bot API (GET or POST; urlencoded, JSON or multipart bodies)
 *   /file/bot<token>/<path> file downloads (paths from getFile)
 *   POST /sendMessage /sendCommand /sendCallback /sendEditedMessage   simulated users
 *        (package format: the message with a `botToken` field; answers {ok, result: Update})
 *   POST /getUpdates /getUpdatesHistory                             the package's own client routes
 *   /control/...   test control: faults, reset, calls, requests, botMessages, updates, files, health,
 *                  update (POST {botToken, update}: any update as given, e.g. a channel_post)
 */

const path = require('path');
const crypto = require('crypto');

const pkgDir = path.dirname(require.resolve('telegram-test-api/package.json'));
// express is a dependency of telegram-test-api: resolve it from there, not from npm's hoisting.
const express = require(require.resolve('express', { paths: [pkgDir] }));
const TelegramServer = require('telegram-test-api');

// ----------------------------------------------------------------------------------------------
// Options

function parseOptions(argv, env) {
  const opts = {
    port: env.BOTAPI_PORT !== undefined ? Number(env.BOTAPI_PORT) : 9000,
    host: env.BOTAPI_HOST || '127.0.0.1',
    botUsername: env.BOTAPI_BOT_USERNAME || 'komek_test_bot',
    botFirstName: env.BOTAPI_BOT_FIRST_NAME || 'Komek Test',
    verbose: env.BOTAPI_VERBOSE === '1',
    exitOnStdinClose: false,
    storeTimeout: 3600,
  };
  const args = argv.slice();
  while (args.length) {
    const a = args.shift();
    const value = () => {
      if (!args.length) throw new Error(`${a} needs a value`);
      return args.shift();
    };
    if (a === '--port') opts.port = Number(value());
    else if (a === '--host') opts.host = value();
    else if (a === '--bot-username') opts.botUsername = value();
    else if (a === '--bot-first-name') opts.botFirstName = value();
    else if (a === '--store-timeout') opts.storeTimeout = Number(value());
    else if (a === '--exit-on-stdin-close') opts.exitOnStdinClose = true;
    else if (a === '--verbose') opts.verbose = true;
    else if (/^\d+$/.test(a)) opts.port = Number(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error(`bad port ${opts.port}`);
  }
  return opts;
}

// ----------------------------------------------------------------------------------------------
// Bot API helpers

class ApiError extends Error {
  constructor(code, description, parameters) {
    super(description);
    this.code = code;
    this.description = description;
    this.parameters = parameters;
  }
}

const badRequest = (what) => new ApiError(400, `Bad Request: ${what}`);

function sendOk(res, result) {
  if (!res.headersSent && !res.writableEnded) res.status(200).json({ ok: true, result });
}

function sendError(res, code, description, parameters) {
  if (res.headersSent || res.writableEnded) return;
  const body = { ok: false, error_code: code, description };
  if (parameters) body.parameters = parameters;
  res.status(code).json(body);
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function isEmpty(v) {
  return v === undefined || v === null || v === '';
}

function jsonParam(params, name) {
  const v = params[name];
  if (isEmpty(v)) return undefined;
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch (e) {
    throw badRequest(`can't parse ${name} JSON object`);
  }
}

function intParam(params, name, dflt) {
  const v = params[name];
  if (isEmpty(v)) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw badRequest(`invalid ${name} value "${v}"`);
  return Math.trunc(n);
}

function boolParam(params, name) {
  const v = params[name];
  return v === true || v === 'true' || v === '1' || v === 1;
}

function strParam(params, name) {
  const v = params[name];
  return isEmpty(v) ? undefined : String(v);
}

/** chat_id as the Bot API accepts it: an integer or "@username". */
function chatIdParam(params, name = 'chat_id', required = true) {
  const v = params[name];
  if (isEmpty(v)) {
    if (required) throw badRequest(`${name} is empty`);
    return undefined;
  }
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  const s = String(v).trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  if (/^@\w+$/.test(s)) return s;
  throw badRequest('chat not found');
}

const sameChat = (a, b) => String(a) === String(b);

// ----------------------------------------------------------------------------------------------
// parse_mode=HTML, as the Bot API does it: plain text + entities, or 400 on bad markup.

const HTML_TAGS = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', u: 'underline', ins: 'underline',
  s: 'strikethrough', strike: 'strikethrough', del: 'strikethrough', 'tg-spoiler': 'spoiler',
  span: 'spoiler', a: 'text_link', code: 'code', pre: 'pre', blockquote: 'blockquote',
  'tg-emoji': 'custom_emoji',
};

function decodeHtmlEntities(s) {
  return s.replace(/&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);/g, (m, e) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    try {
      return String.fromCodePoint(cp);
    } catch (err) {
      return m;
    }
  });
}

function parseHtml(src) {
  let out = '';
  const stack = [];
  const entities = [];
  let i = 0;
  const fail = (msg) => {
    const offset = Buffer.byteLength(src.slice(0, i), 'utf8');
    throw badRequest(`can't parse entities: ${msg} at byte offset ${offset}`);
  };
  while (i < src.length) {
    const ch = src[i];
    if (ch === '<') {
      const close = src.indexOf('>', i);
      if (close < 0) fail('Unclosed start tag');
      const inner = src.slice(i + 1, close);
      if (inner.startsWith('/')) {
        const name = inner.slice(1).trim().toLowerCase();
        if (!stack.length) fail(`Unexpected end tag "</${name}>"`);
        const top = stack[stack.length - 1];
        if (name !== top.tag) fail(`Unmatched end tag, expected "</${top.tag}>", found "</${name}>"`);
        stack.pop();
        const length = out.length - top.offset;
        if (top.type && length > 0) {
          entities.push({ type: top.type, offset: top.offset, length, ...top.extra });
        }
        i = close + 1;
        continue;
      }
      const m = /^([a-zA-Z][a-zA-Z0-9-]*)(\s[\s\S]*)?$/.exec(inner.replace(/\/$/, ''));
      if (!m) fail(`Unsupported start tag "${inner.split(/\s/)[0]}"`);
      const tag = m[1].toLowerCase();
      if (!(tag in HTML_TAGS)) fail(`Unsupported start tag "${tag}"`);
      const attrs = {};
      const attrRe = /([a-zA-Z][a-zA-Z0-9-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
      let am;
      while ((am = attrRe.exec(m[2] || '')) !== null) {
        const raw = am[2] !== undefined ? am[2] : (am[3] !== undefined ? am[3] : (am[4] || ''));
        attrs[am[1].toLowerCase()] = decodeHtmlEntities(raw);
      }
      let type = HTML_TAGS[tag];
      const extra = {};
      const parent = stack[stack.length - 1];
      if (tag === 'span' && attrs.class !== 'tg-spoiler') fail('Tag "span" must have class "tg-spoiler"');
      if (tag === 'a') {
        const href = attrs.href;
        if (!href) type = null;
        else if (/^tg:\/\/user\?id=\d+$/.test(href)) {
          type = 'text_mention';
          extra.user = { id: Number(href.split('=')[1]), is_bot: false, first_name: 'User' };
        } else extra.url = href;
      }
      if (tag === 'code' && parent && parent.tag === 'pre') {
        type = null;
        const lang = /^language-(.+)$/.exec(attrs.class || '');
        if (lang) parent.extra.language = lang[1];
      }
      if (tag === 'blockquote' && 'expandable' in attrs) type = 'expandable_blockquote';
      if (tag === 'tg-emoji') {
        if (!attrs['emoji-id']) fail('Custom emoji entity must have a "emoji-id" attribute');
        extra.custom_emoji_id = attrs['emoji-id'];
      }
      stack.push({ tag, type, offset: out.length, extra });
      i = close + 1;
      continue;
    }
    if (ch === '&') {
      const m = /^&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);/.exec(src.slice(i, i + 16));
      if (m) {
        out += decodeHtmlEntities(m[0]); // unsupported named entities stay as they are
        i += m[0].length;
        continue;
      }
    }
    out += ch;
    i += 1;
  }
  if (stack.length) fail(`Can't find end tag corresponding to start tag "${stack[stack.length - 1].tag}"`);
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length);
  return { text: out, entities };
}

/** The Bot API strips leading and trailing white space from texts and captions. */
function trimWithEntities(text, entities) {
  const lead = text.length - text.replace(/^\s+/, '').length;
  const trimmed = text.trim();
  const out = [];
  for (const e of entities || []) {
    const start = Math.max(0, e.offset - lead);
    const end = Math.min(trimmed.length, e.offset + e.length - lead);
    if (end > start) out.push({ ...e, offset: start, length: end - start });
  }
  return { text: trimmed, entities: out };
}

const warnedParseModes = new Set();

/** Text (or caption) of a bot request, as the Bot API would store and return it. */
function formatText(raw, parseMode, explicitEntities, maxLength, what) {
  const source = raw === undefined || raw === null ? '' : String(raw);
  let text = source;
  let entities = explicitEntities || [];
  let emulated = true;
  const mode = (parseMode || '').toString();
  if (mode && !explicitEntities) {
    if (mode.toLowerCase() === 'html') {
      ({ text, entities } = parseHtml(source));
    } else if (['markdown', 'markdownv2'].includes(mode.toLowerCase())) {
      emulated = false;
      if (!warnedParseModes.has(mode)) {
        warnedParseModes.add(mode);
        log(`parse_mode=${mode} is not emulated: texts are stored unparsed`);
      }
    } else {
      throw badRequest(`unsupported parse_mode "${mode}"`);
    }
  }
  ({ text, entities } = trimWithEntities(text, entities));
  if (text.length > maxLength) throw badRequest(`${what === 'caption' ? 'message caption' : 'message'} is too long`);
  return { text, entities, source, parseMode: mode || undefined, emulated };
}

// ----------------------------------------------------------------------------------------------
// reply_markup validation (what the Bot API rejects)

const INLINE_BUTTON_ACTIONS = ['url', 'callback_data', 'web_app', 'login_url', 'switch_inline_query',
  'switch_inline_query_current_chat', 'switch_inline_query_chosen_chat', 'copy_text',
  'callback_game', 'pay'];

function parseReplyMarkup(params) {
  const markup = jsonParam(params, 'reply_markup');
  if (markup === undefined) return undefined;
  if (typeof markup !== 'object' || Array.isArray(markup)) throw badRequest("can't parse reply keyboard markup JSON object");
  if ('inline_keyboard' in markup) {
    if (!Array.isArray(markup.inline_keyboard) || !markup.inline_keyboard.every(Array.isArray)) {
      throw badRequest('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays');
    }
    for (const row of markup.inline_keyboard) {
      for (const button of row) {
        if (!button || typeof button.text !== 'string' || !button.text) throw badRequest('BUTTON_TEXT_INVALID');
        if (!INLINE_BUTTON_ACTIONS.some((k) => k in button)) {
          throw badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard");
        }
        if ('callback_data' in button) {
          const size = Buffer.byteLength(String(button.callback_data), 'utf8');
          if (size < 1 || size > 64) throw badRequest('BUTTON_DATA_INVALID');
        }
        if ('url' in button && !/^(https?|tg):\/\//i.test(String(button.url))) throw badRequest('BUTTON_URL_INVALID');
      }
    }
  } else if ('keyboard' in markup) {
    if (!Array.isArray(markup.keyboard) || !markup.keyboard.every(Array.isArray)) {
      throw badRequest('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays');
    }
  } else if (!('remove_keyboard' in markup) && !('force_reply' in markup)) {
    throw badRequest('unsupported reply_markup');
  }
  return markup;
}

const inlineOnly = (markup) => (markup && 'inline_keyboard' in markup ? markup : undefined);

// ----------------------------------------------------------------------------------------------
// Logging and last-resort error handling: the emulator must never exit in the middle of a test.

let verbose = false;
const internalErrors = [];

function log(msg) {
  process.stderr.write(`[botapi ${new Date().toISOString()}] ${msg}\n`);
}

function internalError(where, err) {
  const text = `${where}: ${err && err.stack ? err.stack : err}`;
  internalErrors.push({ time: Date.now(), error: text });
  if (internalErrors.length > 100) internalErrors.shift();
  log(`INTERNAL ERROR ${text}`);
}

// ----------------------------------------------------------------------------------------------
// The emulator

const MEDIA_KINDS = {
  sendPhoto: 'photo', sendDocument: 'document', sendSticker: 'sticker', sendAudio: 'audio',
  sendVideo: 'video', sendVoice: 'voice', sendAnimation: 'animation', sendVideoNote: 'video_note',
};

// Methods whose real result is simply `true` and that need no state here.
const TRUE_METHODS = /^(answerinlinequery|answerprecheckoutquery|answershippingquery|sendchataction|setmessagereaction|pin\w*|unpin\w*|ban\w*|unban\w*|restrict\w*|promote\w*|approve\w*|decline\w*|leavechat|close|logout|readbusinessmessage|set(chat|sticker|custom|user|business|passport|game)\w*|delete(chat|sticker|forumtopic|business|story)\w*|closeforumtopic|reopenforumtopic|editforumtopic|setmydefaultadministratorrights|verify\w*|removeverification\w*|removechatverification|removeuserverification|unhidegeneralforumtopic|hidegeneralforumtopic|closegeneralforumtopic|reopengeneralforumtopic|editgeneralforumtopic)$/;

class Emulator {
  constructor(server, opts) {
    this.server = server;
    this.opts = opts;
    this.startedAt = Date.now();
    this.faults = [];
    this.faultSeq = 1;
    this.callCounts = {};
    this.requests = [];
    this.requestSeq = 1;
    this.pollers = new Map(); // token -> pending long poll
    this.allowedUpdates = new Map(); // token -> [types] | undefined
    this.webhooks = new Map(); // token -> {url, secret_token, ...}
    this.webhookState = new Map(); // token -> {busy, last_error_date, last_error_message}
    this.chats = new Map(); // String(chat id) -> Chat
    this.users = new Map(); // String(user id) -> User
    this.userMessages = new Map(); // `${token}|${chat}|${id}` -> latest Message sent by a user
    this.callbackQueries = new Map(); // id -> {token, answered}
    this.files = new Map(); // file_id -> {file_id, file_unique_id, file_size, bytes, ...}
    this.fileSeq = 1;
    this.deletedBotMessages = [];
    this.settings = new Map(); // `${token}|${what}|${scope}|${lang}` -> value
    this.heldSockets = new Set();
    this.patchPackage();
  }

  // ---- package-level patches

  patchPackage() {
    const emu = this;
    const originalFormat = TelegramServer.formatUpdate;
    // Updates stored by the package's own methods (server.addUserMessage & co.) get Bot API shapes.
    TelegramServer.formatUpdate = function formatUpdate(update) {
      if (update.kind) return { update_id: update.updateId, [update.kind]: update.payload };
      const formatted = originalFormat.call(this, update);
      if (formatted.message) {
        const { botToken, ...message } = formatted.message;
        if (message.date > 1e11) message.date = Math.floor(message.date / 1000);
        formatted.message = message;
      }
      if (formatted.callback_query) {
        const chatId = formatted.callback_query.message && formatted.callback_query.message.chat
          ? formatted.callback_query.message.chat.id : 0;
        formatted.callback_query.chat_instance = emu.chatInstance(chatId);
      }
      return formatted;
    };
    // The package posts to webhooks from un-awaited promises (a refused connection kills Node);
    // route every user update through the emulator instead.
    this.server.addUserUpdate = async (update) => {
      const token = update.botToken;
      if (!token) throw badRequest('the update must have a botToken');
      this.pushUpdate(token, update);
    };
  }

  get storage() {
    // The package replaces these arrays (cleanUp, stop): never keep a reference to them.
    return this.server.storage;
  }

  botUser(token) {
    const id = Number(String(token).split(':')[0]) || 666;
    return { id, is_bot: true, first_name: this.opts.botFirstName, username: this.opts.botUsername };
  }

  chatInstance(chatId) {
    return crypto.createHash('sha1').update(`chat-instance:${chatId}`).digest('hex').slice(0, 16);
  }

  rememberChat(chat) {
    if (!chat || chat.id === undefined) return;
    const keep = ['id', 'type', 'title', 'username', 'first_name', 'last_name', 'is_forum'];
    const clean = {};
    for (const k of keep) if (chat[k] !== undefined) clean[k] = chat[k];
    if (clean.type === 'private') delete clean.title;
    this.chats.set(String(chat.id), clean);
  }

  chatFor(chatId) {
    const known = this.chats.get(String(chatId));
    if (known) return known;
    if (typeof chatId === 'string') return { id: 0, type: 'channel', title: chatId, username: chatId.slice(1) };
    if (chatId < 0) return { id: chatId, type: String(chatId).startsWith('-100') ? 'supergroup' : 'group', title: `Group ${chatId}` };
    const user = this.users.get(String(chatId));
    return { id: chatId, type: 'private', first_name: user ? user.first_name : 'User' };
  }

  // ---- updates (getUpdates with offset / limit / timeout, webhooks)

  pushUpdate(token, update) {
    this.storage.userMessages.push(update);
    this.server.updateId = Math.max(this.server.updateId, update.updateId + 1);
    this.wakePoller(token);
    if (this.webhooks.has(token)) this.deliverWebhooks(token);
  }

  addUpdate(token, kind, payload) {
    const update = {
      time: Date.now(),
      botToken: token,
      updateId: this.server.updateId,
      messageId: payload.message_id !== undefined ? payload.message_id : this.server.messageId,
      isRead: false,
      kind,
      payload,
    };
    // Fields the package's own helpers (deleteMessage, getUpdatesHistory) look at.
    if (kind === 'callback_query') update.callbackQuery = payload;
    else update.message = payload;
    this.pushUpdate(token, update);
    const eventName = { message: 'AddedUserMessage', callback_query: 'AddedUserCallbackQuery' }[kind];
    if (eventName) this.server.emit(eventName);
    return TelegramServer.formatUpdate(update);
  }

  updateType(update) {
    return Object.keys(TelegramServer.formatUpdate(update)).find((k) => k !== 'update_id');
  }

  /** Unconfirmed updates for a bot, confirming (forgetting) those below `offset`. */
  takeUpdates(token, offset, limit) {
    const mine = this.storage.userMessages.filter((u) => u.botToken === token && !u.isRead)
      .sort((a, b) => a.updateId - b.updateId);
    let pending = mine;
    if (offset > 0) {
      for (const u of mine) if (u.updateId < offset) u.isRead = true;
      pending = mine.filter((u) => u.updateId >= offset);
    } else if (offset < 0) {
      const keep = mine.slice(offset);
      for (const u of mine) if (!keep.includes(u)) u.isRead = true;
      pending = keep;
    }
    const allowed = this.allowedUpdates.get(token);
    if (allowed && allowed.length) {
      for (const u of pending) if (!allowed.includes(this.updateType(u))) u.isRead = true;
      pending = pending.filter((u) => !u.isRead);
    }
    return pending.slice(0, limit).map((u) => TelegramServer.formatUpdate(u));
  }

  pendingCount(token) {
    return this.storage.userMessages.filter((u) => u.botToken === token && !u.isRead).length;
  }

  getUpdates(ctx) {
    const { token, params, res } = ctx;
    if (this.webhooks.has(token)) {
      throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
    }
    const offset = intParam(params, 'offset', 0);
    const limit = Math.min(100, Math.max(1, intParam(params, 'limit', 100)));
    const timeout = Math.min(50, Math.max(0, intParam(params, 'timeout', 0)));
    const allowed = jsonParam(params, 'allowed_updates');
    if (Array.isArray(allowed)) this.allowedUpdates.set(token, allowed);

    // Like Telegram: a new getUpdates ends the one still waiting for the same bot with 409.
    const previous = this.pollers.get(token);
    if (previous) previous.finish(new ApiError(409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running'));

    const ready = this.takeUpdates(token, offset, limit);
    if (ready.length || timeout === 0) return ready;

    return new Promise((resolve, reject) => {
      const poller = {
        finish: (error) => {
          if (poller.done) return;
          poller.done = true;
          clearTimeout(poller.timer);
          if (this.pollers.get(token) === poller) this.pollers.delete(token);
          if (error) reject(error);
          else resolve(this.takeUpdates(token, offset, limit));
        },
        check: () => {
          if (this.takeUpdates(token, offset, limit).length) poller.finish();
        },
      };
      poller.timer = setTimeout(() => poller.finish(), timeout * 1000);
      // The client went away (PTB cancels its long poll on shutdown): forget it, answer nothing.
      res.on('close', () => {
        if (!poller.done) {
          poller.done = true;
          clearTimeout(poller.timer);
          if (this.pollers.get(token) === poller) this.pollers.delete(token);
          resolve([]);
        }
      });
      this.pollers.set(token, poller);
    });
  }

  wakePoller(token) {
    const poller = this.pollers.get(token);
    if (poller) setImmediate(() => poller.check());
  }

  async deliverWebhooks(token) {
    const state = this.webhookState.get(token) || {};
    this.webhookState.set(token, state);
    if (state.busy) return;
    state.busy = true;
    try {
      for (;;) {
        const hook = this.webhooks.get(token);
        if (!hook) return;
        const next = this.storage.userMessages.filter((u) => u.botToken === token && !u.isRead)
          .sort((a, b) => a.updateId - b.updateId)[0];
        if (!next) return;
        const type = this.updateType(next);
        if (hook.allowed_updates && hook.allowed_updates.length && !hook.allowed_updates.includes(type)) {
          next.isRead = true;
          continue;
        }
        let failure = null;
        try {
          const headers = { 'content-type': 'application/json' };
          if (hook.secret_token) headers['X-Telegram-Bot-Api-Secret-Token'] = hook.secret_token;
          const resp = await fetch(hook.url, {
            method: 'POST', headers, body: JSON.stringify(TelegramServer.formatUpdate(next)),
            signal: AbortSignal.timeout(10000),
          });
          if (resp.status >= 200 && resp.status < 300) next.isRead = true;
          else failure = `Wrong response from the webhook: ${resp.status} ${resp.statusText}`;
        } catch (e) {
          failure = `Connection failed: ${e.message}`;
        }
        if (failure) {
          state.last_error_date = nowSeconds();
          state.last_error_message = failure;
          log(`webhook ${hook.url}: ${failure}; retrying in 1 s`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    } finally {
      state.busy = false;
    }
  }

  // ---- bot messages

  findBotRecord(token, chatId, messageId) {
    return this.storage.botMessages.find((e) => e.botToken === token && e.record
      && sameChat(e.record.chat_id, chatId) && e.record.message_id === Number(messageId));
  }

  botRecords(token, chatId) {
    return this.storage.botMessages.filter((e) => e.record && (!token || e.botToken === token)
      && (chatId === undefined || sameChat(e.record.chat_id, chatId)));
  }

  /** Stores a message sent by the bot (through the package's addBotMessage) and returns the entry. */
  storeBotMessage(token, method, params, chatId, fields, markup) {
    const replyTo = this.replyTarget(token, chatId, params);
    const messageId = this.server.messageId;
    const date = nowSeconds();
    const message = {
      message_id: messageId,
      from: this.botUser(token),
      chat: this.chatFor(chatId),
      date,
      ...fields.message,
    };
    if (replyTo) message.reply_to_message = replyTo;
    if (inlineOnly(markup)) message.reply_markup = markup;
    // The package's own storage shape: its /getUpdates client route filters on message.chat_id.
    this.server.addBotMessage({ ...fields.stored, chat_id: chatId, reply_markup: markup }, token);
    const entry = this.storage.botMessages[this.storage.botMessages.length - 1];
    entry.apiMessage = message;
    entry.record = {
      message_id: messageId,
      chat_id: chatId,
      date,
      edit_date: null,
      type: fields.type,
      text: fields.record.text,
      raw_text: fields.record.raw_text,
      parse_mode: fields.record.parse_mode || null,
      parse_mode_emulated: fields.record.parse_mode_emulated,
      entities: fields.record.entities,
      caption: fields.record.caption === undefined ? null : fields.record.caption,
      reply_markup: markup || null,
      reply_to_message_id: replyTo ? replyTo.message_id : null,
      method,
      params: sanitizeParams(params),
      edits: [],
      deleted: false,
      message,
    };
    return entry;
  }

  replyTarget(token, chatId, params) {
    let target = jsonParam(params, 'reply_parameters');
    if (!target && !isEmpty(params.reply_to_message_id)) {
      target = { message_id: intParam(params, 'reply_to_message_id'), allow_sending_without_reply: boolParam(params, 'allow_sending_without_reply') };
    }
    if (!target || isEmpty(target.message_id)) return undefined;
    const targetChat = target.chat_id !== undefined ? target.chat_id : chatId;
    const found = this.userMessages.get(`${token}|${targetChat}|${Number(target.message_id)}`)
      || (this.findBotRecord(token, targetChat, target.message_id) || {}).apiMessage;
    if (found) {
      const { reply_to_message: ignored, ...shallow } = found;
      return shallow;
    }
    if (target.allow_sending_without_reply) return undefined;
    throw badRequest('message to be replied not found');
  }

  sendMessage(ctx) {
    const { token, params } = ctx;
    const chatId = chatIdParam(params);
    if (isEmpty(params.text)) throw badRequest('message text is empty');
    const markup = parseReplyMarkup(params);
    const t = formatText(params.text, params.parse_mode, jsonParam(params, 'entities'), 4096, 'text');
    if (!t.text) throw badRequest('message text is empty');
    const message = { text: t.text };
    if (t.entities.length) message.entities = t.entities;
    const link = jsonParam(params, 'link_preview_options');
    if (link && typeof link === 'object') message.link_preview_options = link;
    const entry = this.storeBotMessage(token, 'sendMessage', params, chatId, {
      type: 'text',
      message,
      stored: { text: t.text },
      record: {
        text: t.text, raw_text: t.source, parse_mode: t.parseMode, parse_mode_emulated: t.emulated,
        entities: t.entities,
      },
    }, markup);
    return entry.apiMessage;
  }

  async sendMedia(ctx, canonical) {
    const { token, params } = ctx;
    const kind = MEDIA_KINDS[canonical];
    const chatId = chatIdParam(params);
    const markup = parseReplyMarkup(params);
    const file = await this.fileFromParam(ctx, kind);
    const message = {};
    const base = { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size };
    if (kind === 'photo') message.photo = [{ ...base, width: 800, height: 600 }];
    else if (kind === 'sticker') message.sticker = { ...base, type: 'regular', width: 512, height: 512, is_animated: false, is_video: false, emoji: params.emoji };
    else if (kind === 'document') message.document = { ...base, file_name: file.file_name, mime_type: file.mime_type };
    else if (kind === 'video_note') message.video_note = { ...base, length: 240, duration: intParam(params, 'duration', 1) };
    else {
      message[kind] = { ...base, duration: intParam(params, 'duration', 1) };
      if (kind === 'video' || kind === 'animation') Object.assign(message[kind], { width: 640, height: 480 });
      if (file.mime_type) message[kind].mime_type = file.mime_type;
    }
    let caption;
    if (kind !== 'sticker' && kind !== 'video_note' && !isEmpty(params.caption)) {
      caption = formatText(params.caption, params.parse_mode, jsonParam(params, 'caption_entities'), 1024, 'caption');
      if (caption.text) message.caption = caption.text;
      if (caption.entities.length) message.caption_entities = caption.entities;
    }
    const entry = this.storeBotMessage(token, canonical, params, chatId, {
      type: kind,
      message,
      stored: { text: caption ? caption.text : undefined, [kind]: message[kind] },
      record: {
        text: null, caption: caption ? caption.text : null, raw_text: caption ? caption.source : null,
        parse_mode: caption ? caption.parseMode : undefined, parse_mode_emulated: caption ? caption.emulated : true,
        entities: caption ? caption.entities : [],
      },
    }, markup);
    entry.record[kind] = message[kind];
    return entry.apiMessage;
  }

  sendSimple(ctx, canonical) {
    const { token, params } = ctx;
    const chatId = chatIdParam(params);
    const markup = parseReplyMarkup(params);
    let type;
    const message = {};
    if (canonical === 'sendLocation') {
      type = 'location';
      message.location = { latitude: Number(params.latitude), longitude: Number(params.longitude) };
      if (!Number.isFinite(message.location.latitude) || !Number.isFinite(message.location.longitude)) throw badRequest('wrong latitude or longitude');
    } else {
      type = 'contact';
      if (isEmpty(params.phone_number) || isEmpty(params.first_name)) throw badRequest('phone_number and first_name are required');
      message.contact = { phone_number: String(params.phone_number), first_name: String(params.first_name) };
      if (!isEmpty(params.last_name)) message.contact.last_name = String(params.last_name);
    }
    const entry = this.storeBotMessage(token, canonical, params, chatId, {
      type, message, stored: { [type]: message[type] },
      record: { text: null, raw_text: null, entities: [], parse_mode_emulated: true },
    }, markup);
    entry.record[type] = message[type];
    return entry.apiMessage;
  }

  editMessage(ctx, canonical) {
    const { token, params } = ctx;
    if (!isEmpty(params.inline_message_id)) throw badRequest('inline messages (inline_message_id) are not emulated');
    const chatId = chatIdParam(params);
    const messageId = intParam(params, 'message_id');
    if (messageId === undefined) throw badRequest('message identifier is not specified');
    const entry = this.findBotRecord(token, chatId, messageId);
    if (!entry) throw badRequest('message to edit not found');
    const rec = entry.record;
    const msg = entry.apiMessage;
    const markup = parseReplyMarkup(params);
    if (markup && !('inline_keyboard' in markup)) throw badRequest('inline keyboard expected');
    const next = { ...msg };
    // Editing without reply_markup removes the inline keyboard, as on Telegram.
    if (markup) next.reply_markup = markup;
    else delete next.reply_markup;
    const recUpdate = { reply_markup: markup || null };
    if (canonical === 'editMessageText') {
      if (rec.type !== 'text') throw badRequest('there is no text in the message to edit');
      if (isEmpty(params.text)) throw badRequest('message text is empty');
      const t = formatText(params.text, params.parse_mode, jsonParam(params, 'entities'), 4096, 'text');
      if (!t.text) throw badRequest('message text is empty');
      next.text = t.text;
      if (t.entities.length) next.entities = t.entities;
      else delete next.entities;
      Object.assign(recUpdate, { text: t.text, raw_text: t.source, parse_mode: t.parseMode || null, parse_mode_emulated: t.emulated, entities: t.entities });
    } else if (canonical === 'editMessageCaption') {
      if (rec.type === 'text') throw badRequest('there is no caption in the message to edit');
      const c = formatText(params.caption || '', params.parse_mode, jsonParam(params, 'caption_entities'), 1024, 'caption');
      if (c.text) next.caption = c.text;
      else delete next.caption;
      if (c.entities.length) next.caption_entities = c.entities;
      else delete next.caption_entities;
      Object.assign(recUpdate, { caption: c.text || null, raw_text: c.source, parse_mode: c.parseMode || null, parse_mode_emulated: c.emulated, entities: c.entities });
    }
    const comparable = (m) => JSON.stringify([m.text, m.entities, m.caption, m.caption_entities, m.reply_markup]);
    if (comparable(next) === comparable(msg)) {
      throw badRequest('message is not modified: specified new message content and reply markup are exactly the same as a content and reply markup of the current message');
    }
    next.edit_date = nowSeconds();
    entry.apiMessage = next;
    Object.assign(rec, recUpdate, { edit_date: next.edit_date, message: next });
    rec.edits.push({ method: canonical, date: next.edit_date, params: sanitizeParams(params) });
    // Keep the package's stored copy in step (its client routes read entry.message).
    entry.message = { ...entry.message, text: next.text, reply_markup: markup };
    this.server.emit(canonical === 'editMessageReplyMarkup' ? 'EditedMessageReplyMarkup' : 'EditedMessageText');
    return next;
  }

  deleteOne(token, chatId, messageId) {
    const entry = this.findBotRecord(token, chatId, messageId);
    if (entry) {
      entry.record.deleted = true;
      this.storage.botMessages = this.storage.botMessages.filter((e) => e !== entry);
      this.deletedBotMessages.push(entry);
      return true;
    }
    const key = `${token}|${chatId}|${Number(messageId)}`;
    if (this.userMessages.has(key)) {
      this.userMessages.delete(key);
      return true;
    }
    return false;
  }

  // ---- files

  registerFile({ bytes, file_name: fileName, mime_type: mimeType, file_id: fileId }) {
    const seq = this.fileSeq++;
    const file = {
      file_id: fileId || `EMU${String(seq).padStart(6, '0')}${crypto.randomBytes(6).toString('hex')}`,
      file_unique_id: `U${seq}`,
      file_size: bytes ? bytes.length : undefined,
      file_name: fileName,
      mime_type: mimeType,
      bytes,
    };
    this.files.set(file.file_id, file);
    return file;
  }

  async fileFromParam(ctx, kind) {
    const { params, uploads } = ctx;
    let value = params[kind];
    if (isEmpty(value) && uploads && uploads[kind]) value = uploads[kind];
    if (isEmpty(value)) throw badRequest(`there is no ${kind} in the request`);
    if (typeof value === 'string' && value.startsWith('attach://')) {
      value = uploads && uploads[value.slice('attach://'.length)];
      if (!value) throw badRequest(`wrong HTTP URL or file identifier: attached file "${params[kind]}" not found`);
    }
    if (typeof value === 'object' && value.bytes) return this.registerFile(value);
    const s = String(value);
    if (this.files.has(s)) return this.files.get(s);
    if (/^https?:\/\//i.test(s)) return this.registerFile({ file_name: s.split('/').pop() });
    throw badRequest('wrong file identifier/HTTP URL specified');
  }

  // ---- simulated users (client side)

  normalizeUserMessage(body, { command = false } = {}) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object (a Message with a botToken field)');
    const { botToken: token, ...m } = body;
    if (!token || typeof token !== 'string') throw badRequest('botToken is required');
    if (!m.chat || isEmpty(m.chat.id)) throw badRequest('chat.id is required');
    const chatId = Number(m.chat.id);
    if (!Number.isInteger(chatId)) throw badRequest('chat.id must be an integer');
    const chatType = m.chat.type || (chatId < 0 ? 'group' : 'private');
    m.chat = { ...m.chat, id: chatId, type: chatType };
    if (chatType === 'private') {
      delete m.chat.title;
      if (!m.chat.first_name) m.chat.first_name = (m.from && m.from.first_name) || 'User';
    } else if (!m.chat.title) m.chat.title = `Group ${chatId}`;
    const from = m.from || {};
    m.from = { ...from, id: Number(from.id || (chatId > 0 ? chatId : 1)), is_bot: Boolean(from.is_bot), first_name: from.first_name || 'User' };
    if (chatType === 'private' && m.from.id !== chatId) throw badRequest('in a private chat, chat.id must equal from.id');
    if (isEmpty(m.date)) m.date = nowSeconds();
    else if (Number(m.date) > 1e11) m.date = Math.floor(Number(m.date) / 1000); // milliseconds
    if (typeof m.text === 'string' && !m.entities) {
      const cmd = /^\/[A-Za-z0-9_]+(@\w+)?/.exec(m.text);
      if (cmd) m.entities = [{ type: 'bot_command', offset: 0, length: cmd[0].length }];
    }
    if (command && !(m.entities || []).some((e) => e.type === 'bot_command')) {
      throw badRequest('a command needs a text starting with / (or entities with a bot_command)');
    }
    if (!isEmpty(m.reply_to_message_id)) {
      const target = this.userMessages.get(`${token}|${chatId}|${Number(m.reply_to_message_id)}`)
        || (this.findBotRecord(token, chatId, m.reply_to_message_id) || {}).apiMessage;
      if (!target) throw badRequest(`reply_to_message_id ${m.reply_to_message_id} not found in chat ${chatId}`);
      const { reply_to_message: ignored, ...shallow } = target;
      m.reply_to_message = shallow;
      delete m.reply_to_message_id;
    }
    m.message_id = this.server.messageId;
    this.server.messageId += 1;
    this.rememberChat(m.chat);
    this.users.set(String(m.from.id), m.from);
    this.userMessages.set(`${token}|${chatId}|${m.message_id}`, m);
    return { token, message: m };
  }

  clientMessage(body, opts) {
    const { token, message } = this.normalizeUserMessage(body, opts);
    return this.addUpdate(token, 'message', message);
  }

  clientEditedMessage(body) {
    if (!body || typeof body !== 'object') throw badRequest('the body must be a JSON object');
    const token = body.botToken;
    const chatId = body.chat ? Number(body.chat.id) : Number(body.chat_id);
    const messageId = Number(body.message_id);
    if (!token || !Number.isInteger(chatId) || !Number.isInteger(messageId)) throw badRequest('botToken, chat.id (or chat_id) and message_id are required');
    const key = `${token}|${chatId}|${messageId}`;
    const original = this.userMessages.get(key);
    if (!original) throw badRequest(`no user message ${messageId} in chat ${chatId}`);
    const edited = { ...original, edit_date: nowSeconds() };
    for (const k of ['text', 'caption', 'entities', 'caption_entities']) {
      if (k in body) edited[k] = body[k];
    }
    if ('text' in body && !('entities' in body)) {
      const cmd = /^\/[A-Za-z0-9_]+(@\w+)?/.exec(String(body.text));
      if (cmd) edited.entities = [{ type: 'bot_command', offset: 0, length: cmd[0].length }];
      else delete edited.entities;
    }
    this.userMessages.set(key, edited);
    return this.addUpdate(token, 'edited_message', edited);
  }

  clientCallback(body) {
    if (!body || typeof body !== 'object') throw badRequest('the body must be a JSON object');
    const token = body.botToken;
    if (!token) throw badRequest('botToken is required');
    const m = body.message || {};
    const chatId = m.chat ? Number(m.chat.id) : Number(body.chat_id);
    const messageId = Number(m.message_id !== undefined ? m.message_id : body.message_id);
    if (!Number.isInteger(chatId) || !Number.isInteger(messageId)) {
      throw badRequest('the callback needs the bot message (message.chat.id and message.message_id)');
    }
    const entry = this.findBotRecord(token, chatId, messageId);
    if (!entry) throw badRequest(`no message ${messageId} from this bot in chat ${chatId}`);
    const data = body.data === undefined ? undefined : String(body.data);
    const markup = entry.apiMessage.reply_markup;
    const buttons = markup ? markup.inline_keyboard.flat() : [];
    if (!body.force && !buttons.some((b) => b.callback_data === data)) {
      throw badRequest(`message ${messageId} has no inline button with callback_data ${JSON.stringify(data)}; `
        + `its buttons: ${JSON.stringify(buttons.map((b) => b.callback_data || b.url || b.text))} (send force: true to press it anyway)`);
    }
    const chat = entry.apiMessage.chat;
    const fromIn = body.from || {};
    const from = { ...fromIn, id: Number(fromIn.id || (chat.id > 0 ? chat.id : 1)), is_bot: false, first_name: fromIn.first_name || 'User' };
    this.users.set(String(from.id), from);
    const id = String(this.server.callbackId);
    this.server.callbackId += 1;
    const query = { id, from, message: entry.apiMessage, chat_instance: this.chatInstance(chat.id), data };
    if (data === undefined) delete query.data;
    this.callbackQueries.set(id, { token, answered: false, chat_id: chat.id, message_id: messageId, data });
    return this.addUpdate(token, 'callback_query', query);
  }

  /** Any update, as given (a channel post, a message without `from`, a callback without `message`). */
  clientRawUpdate(body) {
    if (!body || typeof body !== 'object') throw badRequest('the body must be a JSON object');
    const token = body.botToken;
    if (!token || typeof token !== 'string') throw badRequest('botToken is required');
    const update = body.update;
    const kinds = update && typeof update === 'object' ? Object.keys(update).filter((k) => k !== 'update_id') : [];
    if (kinds.length !== 1) throw badRequest('update must have exactly one field besides update_id');
    const payload = update[kinds[0]];
    if (!payload || typeof payload !== 'object') throw badRequest(`update.${kinds[0]} must be an object`);
    return this.addUpdate(token, kinds[0], { ...payload });
  }

  // ---- faults

  addFault(body) {
    if (!body || typeof body !== 'object') throw badRequest('the body must be a JSON object');
    const mode = String(body.mode || '');
    const modes = ['429', '500', '502', 'timeout', 'drop', 'blocked'];
    if (!modes.includes(mode)) throw badRequest(`mode must be one of ${modes.join(', ')}`);
    const method = String(body.method || (mode === 'blocked' ? '*' : ''));
    if (!method) throw badRequest('method is required (a Bot API method name, or "*")');
    if (mode === 'blocked' && isEmpty(body.chat_id)) throw badRequest('mode "blocked" needs a chat_id');
    const count = isEmpty(body.count) ? (mode === 'blocked' ? Infinity : 1) : Number(body.count);
    if (!(count > 0)) throw badRequest('count must be a positive number');
    const fault = {
      id: this.faultSeq++,
      method,
      mode,
      remaining: count,
      retry_after: isEmpty(body.retry_after) ? 1 : Number(body.retry_after),
      hold_seconds: isEmpty(body.hold_seconds) ? 30 : Number(body.hold_seconds),
      chat_id: isEmpty(body.chat_id) ? undefined : String(body.chat_id),
      token: body.token || undefined,
      hits: 0,
    };
    this.faults.push(fault);
    return this.describeFault(fault);
  }

  describeFault(f) {
    return { ...f, remaining: f.remaining === Infinity ? null : f.remaining };
  }

  takeFault(token, canonical, params) {
    const lower = canonical.toLowerCase();
    const fault = this.faults.find((f) => f.remaining > 0
      && (f.method === '*' || f.method.toLowerCase() === lower)
      && (!f.token || f.token === token)
      && (f.chat_id === undefined || (!isEmpty(params.chat_id) && String(params.chat_id).trim() === f.chat_id)));
    if (!fault) return null;
    fault.remaining -= 1;
    fault.hits += 1;
    if (fault.remaining <= 0) this.faults = this.faults.filter((f) => f !== fault);
    return fault;
  }

  applyFault(fault, req, res) {
    if (fault.mode === '429') {
      sendError(res, 429, `Too Many Requests: retry after ${fault.retry_after}`, { retry_after: fault.retry_after });
    } else if (fault.mode === '500') {
      sendError(res, 500, 'Internal Server Error');
    } else if (fault.mode === '502') {
      res.status(502).type('text/html').send('<html><body><h1>502 Bad Gateway</h1></body></html>');
    } else if (fault.mode === 'blocked') {
      sendError(res, 403, 'Forbidden: bot was blocked by the user');
    } else if (fault.mode === 'drop') {
      req.socket.destroy();
    } else if (fault.mode === 'timeout') {
      const socket = req.socket;
      this.heldSockets.add(socket);
      const timer = setTimeout(() => {
        this.heldSockets.delete(socket);
        socket.destroy();
      }, fault.hold_seconds * 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        this.heldSockets.delete(socket);
      });
    }
  }

  // ---- express wiring

  buildApp(packageApp) {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    const limit = '60mb';
    app.use(express.json({ limit, type: ['application/json', '*/*+json'] }));
    app.use(express.urlencoded({ extended: false, limit }));
    app.use(express.raw({ type: 'multipart/form-data', limit }));

    app.use((req, _res, next) => {
      if (verbose && !req.path.startsWith('/control')) log(`${req.method} ${req.path} ${req.body && !Buffer.isBuffer(req.body) ? JSON.stringify(req.body).slice(0, 300) : ''}`);
      next();
    });

    // -- the Bot API
    app.all('/bot:token/:method', (req, res) => this.handleBotMethod(req, res));
    app.all('/file/bot:token/*', (req, res) => {
      const rel = req.params[0] || '';
      const file = rel.startsWith('files/') ? this.files.get(rel.slice('files/'.length)) : undefined;
      if (!file || !file.bytes) return sendError(res, 404, 'Not Found');
      res.status(200).type(file.mime_type || 'application/octet-stream').send(file.bytes);
      return undefined;
    });

    // -- simulated users
    const client = (fn) => (req, res) => {
      try {
        sendOk(res, fn(req.body || {}));
      } catch (e) {
        this.answerError(res, e, `client ${req.path}`);
      }
    };
    app.post('/sendMessage', client((b) => this.clientMessage(b)));
    app.post('/sendCommand', client((b) => this.clientMessage(b, { command: true })));
    app.post('/sendCallback', client((b) => this.clientCallback(b)));
    app.post('/sendEditedMessage', client((b) => this.clientEditedMessage(b)));
    app.post(['/getUpdates', '/getUpdatesHistory'], (req, res, next) => {
      if (!req.body || !req.body.token) return sendError(res, 400, 'Bad Request: token is required');
      return next();
    }, packageApp);

    // -- control
    const control = express.Router();
    control.get('/health', (_req, res) => sendOk(res, {
      pid: process.pid,
      port: this.server.server ? this.server.server.address().port : null,
      uptime_s: (Date.now() - this.startedAt) / 1000,
      internal_errors: internalErrors,
    }));
    control.get('/faults', (_req, res) => sendOk(res, this.faults.map((f) => this.describeFault(f))));
    control.post('/faults', client((b) => this.addFault(b)));
    control.post('/update', client((b) => this.clientRawUpdate(b)));
    control.post('/reset', client((b) => this.reset(b)));
    control.get('/calls', (req, res) => {
      const token = req.query.token;
      sendOk(res, token ? (this.callCounts[token] || {}) : this.totalCounts());
    });
    control.get('/requests', (req, res) => {
      const { method, token } = req.query;
      const since = Number(req.query.since || 0);
      sendOk(res, this.requests.filter((r) => r.seq > since
        && (!method || r.method.toLowerCase() === String(method).toLowerCase())
        && (!token || r.token === token)));
    });
    control.get('/botMessages', (req, res) => {
      const { token } = req.query;
      const chatId = isEmpty(req.query.chat_id) ? undefined : req.query.chat_id;
      let entries = this.botRecords(token, chatId);
      if (req.query.include_deleted === '1' || req.query.include_deleted === 'true') {
        entries = entries.concat(this.deletedBotMessages.filter((e) => (!token || e.botToken === token)
          && (chatId === undefined || sameChat(e.record.chat_id, chatId))));
      }
      sendOk(res, entries.map((e) => e.record).sort((a, b) => a.message_id - b.message_id));
    });
    control.get('/updates', (req, res) => {
      const { token } = req.query;
      if (!token) return sendError(res, 400, 'Bad Request: token is required');
      const all = this.storage.userMessages.filter((u) => u.botToken === token);
      return sendOk(res, {
        pending: all.filter((u) => !u.isRead).length,
        total: all.length,
        updates: all.map((u) => ({ ...TelegramServer.formatUpdate(u), confirmed: u.isRead })),
      });
    });
    control.post('/files', client((b) => {
      if (isEmpty(b.content_base64)) throw badRequest('content_base64 is required');
      const file = this.registerFile({ bytes: Buffer.from(String(b.content_base64), 'base64'), file_name: b.file_name, mime_type: b.mime_type });
      return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: file.file_size };
    }));
    app.use('/control', control);

    app.use((req, res) => sendError(res, 404, `Not Found: ${req.method} ${req.path}`));
    // Malformed bodies (bad JSON, wrong urlencoding, too large) answer 4xx instead of crashing.
    // eslint-disable-next-line no-unused-vars
    app.use((err, req, res, _next) => {
      const status = err.status || err.statusCode || 500;
      if (status >= 400 && status < 500) {
        sendError(res, status, status === 413 ? 'Request Entity Too Large' : `Bad Request: can't parse the request body: ${err.message}`);
      } else {
        internalError(`${req.method} ${req.path}`, err);
        sendError(res, 500, `Internal Server Error: ${err.message}`);
      }
    });
    return app;
  }

  totalCounts() {
    const total = {};
    for (const perToken of Object.values(this.callCounts)) {
      for (const [m, n] of Object.entries(perToken)) total[m] = (total[m] || 0) + n;
    }
    return total;
  }

  reset(body) {
    const all = Boolean(body.all);
    const cleared = { faults: this.faults.length };
    this.faults = [];
    for (const socket of this.heldSockets) socket.destroy();
    this.heldSockets.clear();
    if (all || body.calls) {
      this.callCounts = {};
      this.requests = [];
      cleared.calls = true;
    }
    if (all || body.storage) {
      this.storage.userMessages = [];
      this.storage.botMessages = [];
      this.deletedBotMessages = [];
      this.userMessages.clear();
      this.callbackQueries.clear();
      cleared.storage = true;
    }
    return cleared;
  }

  answerError(res, e, where) {
    if (e instanceof ApiError) return sendError(res, e.code, e.description, e.parameters);
    internalError(where, e);
    return sendError(res, 500, `Internal Server Error: ${e && e.message}`);
  }

  async handleBotMethod(req, res) {
    const token = req.params.token;
    const methodName = req.params.method;
    const lower = methodName.toLowerCase();
    const canonical = CANONICAL[lower] || methodName;
    const counts = this.callCounts[token] || (this.callCounts[token] = {});
    counts[canonical] = (counts[canonical] || 0) + 1;
    const entry = { seq: this.requestSeq++, time: Date.now(), token, method: canonical, params: {}, status: null };
    this.requests.push(entry);
    if (this.requests.length > 5000) this.requests.shift();
    res.on('finish', () => { entry.status = res.statusCode; });
    res.on('close', () => { if (entry.status === null) entry.status = 'closed'; });
    try {
      if (!['GET', 'POST'].includes(req.method)) throw new ApiError(405, `Method Not Allowed: HTTP ${req.method}`);
      if (!/^\d+:[\w-]+$/.test(token)) throw new ApiError(404, 'Not Found');
      const ctx = { token, req, res, params: { ...req.query }, uploads: {} };
      if (Buffer.isBuffer(req.body)) await this.parseMultipart(req, ctx);
      else if (req.body && typeof req.body === 'object') Object.assign(ctx.params, req.body);
      entry.params = sanitizeParams(ctx.params);
      const fault = this.takeFault(token, canonical, ctx.params);
      if (fault) {
        entry.fault = fault.mode;
        this.applyFault(fault, req, res);
        return;
      }
      const result = await this.dispatch(ctx, lower, canonical);
      sendOk(res, result);
    } catch (e) {
      this.answerError(res, e, `${canonical}`);
    }
  }

  async parseMultipart(req, ctx) {
    let form;
    try {
      form = await new Response(req.body, { headers: { 'content-type': req.headers['content-type'] } }).formData();
    } catch (e) {
      throw badRequest(`can't parse the multipart body: ${e.message}`);
    }
    for (const [name, value] of form) {
      if (typeof value === 'string') ctx.params[name] = value;
      else {
        ctx.uploads[name] = { bytes: Buffer.from(await value.arrayBuffer()), file_name: value.name, mime_type: value.type || undefined };
      }
    }
  }

  async dispatch(ctx, lower, canonical) {
    const { token, params } = ctx;
    switch (canonical) {
      case 'getMe':
        return {
          ...this.botUser(token),
          can_join_groups: true,
          can_read_all_group_messages: true, // no privacy mode: every group message is delivered
          supports_inline_queries: false,
          can_connect_to_business: false,
          has_main_web_app: false,
        };
      case 'getUpdates':
        return this.getUpdates(ctx);
      case 'setWebhook': {
        const url = strParam(params, 'url');
        if (!url) {
          this.webhooks.delete(token);
          return true;
        }
        if (!/^https?:\/\//.test(url)) throw badRequest('bad webhook: An HTTPS URL must be provided for webhook');
        if (boolParam(params, 'drop_pending_updates')) this.dropPending(token);
        const allowed = jsonParam(params, 'allowed_updates');
        this.webhooks.set(token, { url, secret_token: strParam(params, 'secret_token'), allowed_updates: Array.isArray(allowed) ? allowed : undefined, max_connections: intParam(params, 'max_connections', 40) });
        this.server.setWebhook({ url }, token); // keep the package's registry in step
        const poller = this.pollers.get(token);
        if (poller) poller.finish(new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"));
        setImmediate(() => this.deliverWebhooks(token));
        return true;
      }
      case 'deleteWebhook':
        this.webhooks.delete(token);
        this.server.deleteWebhook(token);
        if (boolParam(params, 'drop_pending_updates')) this.dropPending(token);
        return true;
      case 'getWebhookInfo': {
        const hook = this.webhooks.get(token);
        const state = this.webhookState.get(token) || {};
        const info = { url: hook ? hook.url : '', has_custom_certificate: false, pending_update_count: this.pendingCount(token) };
        if (hook) {
          info.max_connections = hook.max_connections;
          if (hook.allowed_updates) info.allowed_updates = hook.allowed_updates;
          if (state.last_error_date) Object.assign(info, { last_error_date: state.last_error_date, last_error_message: state.last_error_message });
        }
        return info;
      }
      case 'sendMessage':
        return this.sendMessage(ctx);
      case 'sendPhoto': case 'sendDocument': case 'sendSticker': case 'sendAudio':
      case 'sendVideo': case 'sendVoice': case 'sendAnimation': case 'sendVideoNote':
        return this.sendMedia(ctx, canonical);
      case 'sendLocation': case 'sendContact':
        return this.sendSimple(ctx, canonical);
      case 'editMessageText': case 'editMessageReplyMarkup': case 'editMessageCaption':
        return this.editMessage(ctx, canonical);
      case 'deleteMessage': {
        const chatId = chatIdParam(params);
        const messageId = intParam(params, 'message_id');
        if (messageId === undefined) throw badRequest('message identifier is not specified');
        if (!this.deleteOne(token, chatId, messageId)) throw badRequest('message to delete not found');
        return true;
      }
      case 'deleteMessages': {
        const chatId = chatIdParam(params);
        const ids = jsonParam(params, 'message_ids');
        if (!Array.isArray(ids) || !ids.length) throw badRequest('message_ids is empty');
        for (const id of ids) this.deleteOne(token, chatId, id);
        return true;
      }
      case 'answerCallbackQuery': {
        const id = strParam(params, 'callback_query_id');
        const query = id && this.callbackQueries.get(id);
        if (!query || query.token !== token) throw badRequest('query is too old and response timeout expired or query ID is invalid');
        if (!isEmpty(params.text) && String(params.text).length > 200) throw badRequest('MESSAGE_TOO_LONG');
        query.answered = true;
        query.answer = { text: strParam(params, 'text'), show_alert: boolParam(params, 'show_alert'), url: strParam(params, 'url') };
        return true;
      }
      case 'setMyCommands': {
        const commands = jsonParam(params, 'commands');
        if (!Array.isArray(commands)) throw badRequest('commands must be an array');
        if (commands.length > 100) throw badRequest('too many commands');
        for (const c of commands) {
          if (!c || !/^[a-z0-9_]{1,32}$/.test(String(c.command))) throw badRequest('BOT_COMMAND_INVALID');
          const d = String(c.description || '');
          if (d.length < 1 || d.length > 256) throw badRequest('BOT_COMMAND_DESCRIPTION_INVALID');
        }
        this.settings.set(this.settingKey(token, 'commands', params), commands);
        return true;
      }
      case 'getMyCommands':
        return this.settings.get(this.settingKey(token, 'commands', params)) || [];
      case 'deleteMyCommands':
        this.settings.delete(this.settingKey(token, 'commands', params));
        return true;
      case 'setMyDescription': case 'setMyShortDescription': case 'setMyName': {
        const field = { setMyDescription: 'description', setMyShortDescription: 'short_description', setMyName: 'name' }[canonical];
        const max = { description: 512, short_description: 120, name: 64 }[field];
        const value = strParam(params, field) || '';
        if (value.length > max) throw badRequest(`${field.toUpperCase()}_INVALID`);
        this.settings.set(this.settingKey(token, field, params), value);
        return true;
      }
      case 'getMyDescription': case 'getMyShortDescription': case 'getMyName': {
        const field = { getMyDescription: 'description', getMyShortDescription: 'short_description', getMyName: 'name' }[canonical];
        const stored = this.settings.get(this.settingKey(token, field, params));
        return { [field]: stored !== undefined ? stored : (field === 'name' ? this.opts.botFirstName : '') };
      }
      case 'setChatMenuButton':
        this.settings.set(`${token}|menu|${params.chat_id || ''}`, jsonParam(params, 'menu_button') || { type: 'default' });
        return true;
      case 'getChatMenuButton':
        return this.settings.get(`${token}|menu|${params.chat_id || ''}`) || { type: 'default' };
      case 'getMyDefaultAdministratorRights':
        return {
          is_anonymous: false, can_manage_chat: false, can_delete_messages: false, can_manage_video_chats: false,
          can_restrict_members: false, can_promote_members: false, can_change_info: false, can_invite_users: false,
          can_post_stories: false, can_edit_stories: false, can_delete_stories: false,
        };
      case 'getChat': {
        const chatId = chatIdParam(params);
        const chat = this.chats.get(String(chatId));
        if (!chat) throw badRequest('chat not found');
        return {
          ...chat,
          accent_color_id: 0,
          max_reaction_count: 11,
          accepted_gift_types: { unlimited_gifts: false, limited_gifts: false, unique_gifts: false, premium_subscription: false, gifts_from_channels: false },
        };
      }
      case 'getFile': {
        const file = this.files.get(strParam(params, 'file_id') || '');
        if (!file) throw badRequest('invalid file_id');
        const out = { file_id: file.file_id, file_unique_id: file.file_unique_id };
        if (file.file_size !== undefined) out.file_size = file.file_size;
        if (file.bytes) out.file_path = `files/${file.file_id}`;
        return out;
      }
      default:
        if (TRUE_METHODS.test(lower) || lower.startsWith('deletemy') || lower.startsWith('setmy')) return true;
        throw badRequest(`method "${canonical}" is not emulated by tests/botapi/launcher.js`);
    }
  }

  settingKey(token, what, params) {
    const scope = jsonParam(params, 'scope');
    return `${token}|${what}|${scope ? JSON.stringify(scope) : 'default'}|${params.language_code || ''}`;
  }

  dropPending(token) {
    for (const u of this.storage.userMessages) if (u.botToken === token) u.isRead = true;
  }

  /** On shutdown: answer waiting long polls (so a bot is not left hanging) and drop held requests. */
  closeAll() {
    for (const poller of this.pollers.values()) poller.finish();
    for (const socket of this.heldSockets) socket.destroy();
  }
}

const KNOWN_METHODS = ['getMe', 'getUpdates', 'setWebhook', 'deleteWebhook', 'getWebhookInfo', 'sendMessage',
  'sendPhoto', 'sendDocument', 'sendSticker', 'sendAudio', 'sendVideo', 'sendVoice', 'sendAnimation',
  'sendVideoNote', 'sendLocation', 'sendContact', 'editMessageText', 'editMessageReplyMarkup',
  'editMessageCaption', 'deleteMessage', 'deleteMessages', 'answerCallbackQuery', 'setMyCommands',
  'getMyCommands', 'deleteMyCommands', 'setMyDescription', 'setMyShortDescription', 'setMyName',
  'getMyDescription', 'getMyShortDescription', 'getMyName', 'setChatMenuButton', 'getChatMenuButton',
  'getMyDefaultAdministratorRights', 'getChat', 'getFile', 'sendChatAction', 'answerInlineQuery',
  'logOut', 'close'];
// Telegram method names are case-insensitive; calls are counted under their usual spelling.
const CANONICAL = Object.fromEntries(KNOWN_METHODS.map((m) => [m.toLowerCase(), m]));

function sanitizeParams(params) {
  const out = {};
  for (const [k, v] of Object.entries(params || {})) {
    out[k] = typeof v === 'string' && v.length > 10000 ? `${v.slice(0, 10000)}…` : v;
  }
  return out;
}

// ----------------------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2), process.env);
  } catch (e) {
    process.stderr.write(`launcher.js: ${e.message}\n`);
    process.exit(2);
  }
  verbose = opts.verbose;
  process.on('unhandledRejection', (e) => internalError('unhandledRejection', e));
  process.on('uncaughtException', (e) => internalError('uncaughtException', e));

  // The package turns port 0 into 9000 (`config.port || 9000`): build it, then set the real port.
  const server = new TelegramServer({ port: opts.port || 9000, host: opts.host, storeTimeout: opts.storeTimeout });
  server.config.port = opts.port;
  const emulator = new Emulator(server, opts);
  server.webServer = emulator.buildApp(server.webServer);

  let stopping = false;
  const shutdown = (why) => {
    if (stopping) return;
    stopping = true;
    if (verbose) log(`stopping (${why})`);
    emulator.closeAll();
    if (server.server) server.server.close();
    // Give the answers to waiting long polls a moment to leave, then go.
    setTimeout(() => process.exit(0), 50).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
  if (opts.exitOnStdinClose) {
    // The parent (the Python test fixture) holds our stdin: when it dies, even by SIGKILL, we go.
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  try {
    await server.start();
  } catch (e) {
    process.stderr.write(`launcher.js: cannot listen on ${opts.host}:${opts.port}: ${e.message}\n`);
    process.exit(1);
  }
  // Long polls last up to 50 s: do not let Node's default timeouts cut them.
  server.server.requestTimeout = 0;
  server.server.headersTimeout = 60000;
  server.server.keepAliveTimeout = 65000;
  const port = server.server.address().port;
  server.config.port = port;
  server.config.apiURL = `${server.config.protocol}://${opts.host}:${port}`;
  process.stdout.write(`READY ${port}\n`);
  if (verbose) log(`listening on ${server.config.apiURL}`);
}

if (require.main === module) main();

module.exports = { Emulator, parseHtml, parseOptions };
