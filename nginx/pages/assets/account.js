// What both account pages share (nginx/pages/; docs/api.md "The account pages").
// The token of a mail link is read once from the URL fragment (`#token=...`, never sent to
// any server) or from an old mail's `?token=...`, kept in memory only, and removed from the
// address bar before anything else happens.
"use strict";

window.FixupAccount = (function () {
  const API = "/api/users";
  const PASSWORD_MIN = 8;
  const PASSWORD_MAX = 72;

  function takeToken() {
    const fromFragment = new URLSearchParams(window.location.hash.slice(1)).get("token");
    const fromQuery = new URLSearchParams(window.location.search).get("token");
    // the address bar (and history) keep the path only
    window.history.replaceState(null, "", window.location.pathname);
    return fromFragment || fromQuery || "";
  }

  async function post(path, body) {
    let response;
    try {
      response = await fetch(API + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/problem+json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (err) {
      return { status: 0, problem: null };
    }
    let problem = null;
    if (response.status >= 400) {
      try {
        problem = await response.json();
      } catch (err) {
        problem = null;
      }
    }
    return { status: response.status, problem: problem, retryAfter: response.headers.get("Retry-After") };
  }

  // the problem codes of POST /v1/auth/verify and /v1/auth/password-reset/confirm
  const LINK_MESSAGES = {
    LINK_USED: "This link was already used. Each link works once.",
    LINK_EXPIRED: "This link has expired.",
    LINK_INVALID: "This link is not valid. Check that it was copied in full, or ask for a new one.",
  };

  function problemMessage(result) {
    const code = result.problem && result.problem.code;
    if (code && LINK_MESSAGES[code]) return { code: code, text: LINK_MESSAGES[code] };
    if (code === "VALIDATION_ERROR" && result.problem.errors &&
        result.problem.errors.some((e) => e.field === "token")) {
      return { code: "LINK_INVALID", text: LINK_MESSAGES.LINK_INVALID };
    }
    if (result.status === 429) {
      const wait = result.retryAfter ? ` Try again in ${result.retryAfter} s.` : " Try again later.";
      return { code: "RATE_LIMIT_EXCEEDED", text: "Too many attempts." + wait };
    }
    if (result.status === 0 || result.status >= 500) {
      return { code: code || "UNAVAILABLE", text: "The service cannot answer right now. Try again in a moment." };
    }
    return { code: code || "ERROR", text: (result.problem && result.problem.detail) || "Something went wrong." };
  }

  function say(element, state, text, code) {
    element.dataset.state = state;
    element.dataset.code = code || "";
    element.textContent = text;
  }

  function fieldError(input, message) {
    const error = document.getElementById(input.id + "-error");
    error.textContent = message;
    if (message) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
    return !message;
  }

  function codePoints(text) {
    return Array.from(text).length; // what the API counts, not UTF-16 units
  }

  // "Get a new link": asks for the address, answers the same whether or not it is known
  function offerNewLink(path, sentText) {
    const section = document.getElementById("renew");
    const form = document.getElementById("renew-form");
    const email = document.getElementById("email");
    const status = document.getElementById("renew-status");
    section.hidden = false;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const address = email.value.trim();
      if (!fieldError(email, /^[^@\s]+@[^@\s]+$/.test(address) ? "" : "Enter your email address, like name@example.com.")) {
        email.focus();
        return;
      }
      const button = form.querySelector("button");
      button.disabled = true;
      const result = await post(path, { email: address });
      button.disabled = false;
      if (result.status === 204) {
        say(status, "ok", sentText, "SENT");
      } else {
        const message = problemMessage(result);
        say(status, "error", message.text, message.code);
      }
    });
  }

  return {
    PASSWORD_MIN: PASSWORD_MIN,
    PASSWORD_MAX: PASSWORD_MAX,
    takeToken: takeToken,
    post: post,
    problemMessage: problemMessage,
    say: say,
    fieldError: fieldError,
    codePoints: codePoints,
    offerNewLink: offerNewLink,
  };
})();
