// The client's state, changed only by what the server sends. The event handlers mirror the
// reference client, tests/support/client_state.py, rule for rule (see docs/realtime.md):
// the conversation list as GET /conversations shows it, the unread total, and for the
// conversation the client has open, its messages and participants.
//
// Unlike the reference, the list is loaded page by page (infinite scroll); `complete` says
// whether every page is in. An event about a conversation not loaded yet is reported back to
// the caller (`unknown`), which fetches that conversation.

export class Store {
  constructor(me) {
    this.me = me;
    this.conversations = new Map(); // id -> view
    this.unreadTotal = 0;
    this.messages = new Map(); // open conversation id -> Map(message id -> message)
    this.participants = new Map(); // open conversation id -> Map(user id -> participant)
    this.complete = false;
    this.listeners = new Set();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(change) {
    for (const fn of [...this.listeners]) fn(change);
  }

  // Loading (from HTTP; what is already known wins, since any later change arrives as an event) --

  addPage(items, nextCursor) {
    for (const view of items) {
      if (!this.conversations.has(view.id)) this.conversations.set(view.id, view);
    }
    this.complete = !nextCursor;
    this.notify({ kind: "list" });
  }

  /** A conversation fetched on its own; the caller refreshes the unread total after. */
  addConversation(view) {
    if (!this.conversations.has(view.id)) {
      this.conversations.set(view.id, view);
      this.notify({ kind: "list", conversationId: view.id });
    }
    return this.conversations.get(view.id);
  }

  setUnreadTotal(total) {
    this.unreadTotal = total;
    this.notify({ kind: "unread" });
  }

  clearAll() {
    this.conversations.clear();
    this.messages.clear();
    this.participants.clear();
    this.unreadTotal = 0;
    this.complete = false;
    this.notify({ kind: "list" });
  }

  /** Conversations, newest activity first. */
  sorted() {
    return [...this.conversations.values()].sort(
      (a, b) => (b.last_activity_at || "").localeCompare(a.last_activity_at || "") || a.id.localeCompare(b.id),
    );
  }

  open(cid) {
    this.messages.set(cid, new Map());
    this.participants.set(cid, new Map());
  }

  close(cid) {
    this.messages.delete(cid);
    this.participants.delete(cid);
  }

  addMessages(cid, list) {
    const known = this.messages.get(cid);
    if (!known) return;
    for (const m of list) if (!known.has(m.id)) known.set(m.id, m);
    this.notify({ kind: "messages", conversationId: cid });
  }

  /** A message this client just sent or edited, ahead of its event (the event replaces it). */
  putMessage(cid, message) {
    const known = this.messages.get(cid);
    if (!known) return;
    known.set(message.id, message);
    this.notify({ kind: "messages", conversationId: cid, messageId: message.id });
  }

  addParticipants(cid, list) {
    const known = this.participants.get(cid);
    if (!known) return;
    for (const p of list) if (!known.has(p.user_id)) known.set(p.user_id, p);
    this.notify({ kind: "participants", conversationId: cid });
  }

  sortedMessages(cid) {
    return [...(this.messages.get(cid) || new Map()).values()].sort((a, b) => a.seq - b.seq);
  }

  // Applying events ------------------------------------------------------------------------------

  _merge(cid, part) {
    const view = this.conversations.get(cid);
    if (part && view) Object.assign(view, part);
  }

  _setUnread(cid, count) {
    const view = this.conversations.get(cid);
    this.unreadTotal += count - view.unread_count;
    view.unread_count = count;
  }

  /** Apply a pushed event or a /sync change. Returns {unknown: conversation id} for a conversation not loaded. */
  apply(event, payload) {
    const handler = HANDLERS[event];
    if (!handler) return {};
    const result = handler.call(this, payload) || {};
    this.notify({ kind: "event", event, payload, conversationId: payload.conversation_id || payload.conversation?.id });
    return result;
  }
}

const HANDLERS = {
  "conversation.created"(p) {
    const view = p.conversation;
    if (!this.conversations.has(view.id)) {
      this.conversations.set(view.id, { ...view, unread_count: 0 });
      this._setUnread(view.id, view.unread_count || 0);
    } else {
      const { unread_count: _ignored, ...rest } = view;
      this._merge(view.id, rest);
    }
  },

  "conversation.updated"(p) {
    this._merge(p.conversation_id, p.conversation);
  },

  "participant.added"(p) {
    const cid = p.conversation_id;
    const person = p.participant;
    if (person.user_id === this.me && !this.conversations.has(cid)) {
      // Joined: the event carries the whole conversation as this user sees it.
      this.conversations.set(cid, { ...p.conversation, unread_count: 0 });
      this._setUnread(cid, p.conversation.unread_count);
      return {};
    }
    this._merge(cid, p.conversation);
    if (this.participants.has(cid)) this.participants.get(cid).set(person.user_id, person);
    return {};
  },

  "participant.removed"(p) {
    const cid = p.conversation_id;
    if (p.user_id === this.me) {
      const gone = this.conversations.get(cid);
      if (gone) {
        this.conversations.delete(cid);
        this.unreadTotal -= gone.unread_count;
      }
      this.messages.delete(cid);
      this.participants.delete(cid);
      return {};
    }
    this._merge(cid, p.conversation);
    if (this.participants.has(cid)) this.participants.get(cid).delete(p.user_id);
    return {};
  },

  "message.created"(p) {
    const message = p.message;
    const cid = p.conversation_id;
    const view = this.conversations.get(cid);
    if (!view) return { unknown: this.complete ? null : cid };
    if (message.seq > view.last_seq) {
      // not counted yet (a replay is)
      if (message.sender.id === this.me) {
        view.last_read_seq = message.seq;
        this._setUnread(cid, 0);
      } else {
        this._setUnread(cid, view.unread_count + 1);
      }
    }
    this._merge(cid, p.conversation);
    if (this.messages.has(cid)) this.messages.get(cid).set(message.id, message);
    return {};
  },

  "message.updated"(p) {
    const cid = p.conversation_id;
    this._merge(cid, p.conversation);
    if (this.messages.has(cid)) this.messages.get(cid).set(p.message.id, p.message);
  },

  "message.deleted"(p) {
    const message = p.message;
    const cid = p.conversation_id;
    const view = this.conversations.get(cid);
    if (!view) return {};
    const known = this.messages.get(cid)?.get(message.id);
    const already = known !== undefined && known.deleted !== null && known.deleted !== undefined;
    if (!already && message.seq > view.last_read_seq) this._setUnread(cid, Math.max(view.unread_count - 1, 0));
    this._merge(cid, p.conversation);
    if (this.messages.has(cid)) this.messages.get(cid).set(message.id, message);
    return {};
  },

  "unread.updated"(p) {
    const view = this.conversations.get(p.conversation_id);
    if (view) {
      view.unread_count = p.unread_count;
      view.last_read_seq = p.last_read_seq;
    }
    this.unreadTotal = p.unread_total;
  },
};

export const STATE_EVENTS = new Set(Object.keys(HANDLERS));
