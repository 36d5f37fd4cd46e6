/// <reference path="../pb_data/types.d.ts" />

// Word filter for chat messages.
//
// What it does: every time a message is created or edited, each word listed
// in the environment variable CHAT_WORDFILTER is replaced in the message's
// `text` with asterisks, one per character ("darn" -> "****").
//
//   CHAT_WORDFILTER="darn,heck,frak" ./pocketchat serve
//
// - The list is comma-separated; spaces around entries and empty entries are
//   ignored. An entry may be a short phrase ("bad word"); regex characters in
//   it are taken literally.
// - Matching is case-insensitive and for whole words only: "darn" catches
//   "Darn" and "DARN!" but not "darned" or "undarn". A word is a run of
//   Unicode letters, combining marks, digits and "_", so "école" is caught in
//   "ÉCOLE" but not in "écoles". Text is compared in Unicode NFC form (a
//   masked message is stored in that form; others are stored as sent). Case
//   folding is JavaScript's simple one ("straße" does not catch "STRASSE").
// - Unset or empty CHAT_WORDFILTER: messages are left exactly as sent.
// - The variable is read when the hooks load (at startup). With no list set,
//   the handlers are not bound at all: a JavaScript handler on messages costs
//   a call into a pooled JS runtime on every save (on 2 cores that cost more
//   CPU than everything else a message needs, see docs/benchmarks.md), so a
//   chat without a word list pays nothing for this file.
// - It runs on every save of a messages record: REST, the WebSocket path
//   (server code saves through app.Save) and bot/system messages alike.
//   Messages already stored are not rewritten when the list changes.
//
// To change the behaviour, edit filterMessageText below (e.g. a fixed
// replacement like "[censored]", or reject the message with
// `throw new BadRequestError("...")` instead of masking). Any *.pb.js file in
// pb_hooks is loaded at startup; delete this file to drop the feature.
//
// Note for editors: PocketBase runs each handler as a separate program in a
// pooled JS runtime, so a handler sees none of this file's top-level
// variables or functions. filterMessageText is therefore self-contained,
// and it is registered for both events by passing the same function.

function filterMessageText(e) {
    const raw = $os.getenv("CHAT_WORDFILTER") || "";
    const text = e.record.getString("text");

    if (raw.trim() !== "" && text !== "") {
        // Build (or reuse) the regex for the current list. The cache lives on
        // this runtime's global object and is keyed by the raw value.
        let cache = globalThis.__chatWordFilter;
        if (!cache || cache.raw !== raw) {
            const escape = (s) => s.replace(/[\\^$.*+?()[\]{}|\/]/g, "\\$&");
            const words = raw
                .split(",")
                .map((w) => w.trim().normalize("NFC"))
                .filter((w) => w !== "")
                .sort((a, b) => b.length - a.length) // longest alternative first
                .map(escape);

            let re = null;
            if (words.length > 0) {
                // A word character is a letter, mark, digit or "_": the
                // Unicode-aware counterpart of \w, which (like \b) is
                // ASCII-only in JS regexes.
                const wc = "[\\p{L}\\p{M}\\p{N}_]";
                re = new RegExp("(?<!" + wc + ")(?:" + words.join("|") + ")(?!" + wc + ")", "giu");
            }
            cache = { raw: raw, re: re };
            globalThis.__chatWordFilter = cache;
        }

        if (cache.re) {
            const normalized = text.normalize("NFC");
            cache.re.lastIndex = 0;
            // One asterisk per code point (an emoji counts as one).
            const filtered = normalized.replace(cache.re, (m) => "*".repeat([...m].length));
            if (filtered !== normalized) {
                e.record.set("text", filtered);
            }
        }
    }

    // Always continue the chain: PocketBase's own save, and the realtime
    // broadcast after it, are later handlers in it.
    e.next();
}

// Bound only when the list has at least one entry (see the header).
if (($os.getenv("CHAT_WORDFILTER") || "").split(",").some((w) => w.trim() !== "")) {
    onRecordCreate(filterMessageText, "messages");
    onRecordUpdate(filterMessageText, "messages");
}
