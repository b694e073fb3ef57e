// The signed-in account page (nginx/pages/account.html; docs/api.md "The account pages"):
// sign in with a password or a passkey, list, add and remove one's passkeys, see where one
// is signed in and end another session, sign out.
// The tokens are kept in memory only (no storage, no cookie read); the passkey ceremonies
// are the browser's own (WebAuthn Level 3's JSON forms of the options and credentials).
"use strict";

(function () {
  const API = "/api/users";
  const $ = (id) => document.getElementById(id);
  let session = null; // {access_token, refresh_token}

  async function call(method, path, body) {
    const headers = { Accept: "application/json, application/problem+json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (session) headers.Authorization = "Bearer " + session.access_token;
    let response;
    try {
      response = await fetch(API + path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (err) {
      return { status: 0, body: null };
    }
    let parsed = null;
    if (response.status !== 204) {
      try {
        parsed = await response.json();
      } catch (err) {
        parsed = null;
      }
    }
    return { status: response.status, body: parsed };
  }

  function show(state, text, code) {
    const status = $("status");
    status.dataset.state = state;
    status.dataset.code = code || "";
    status.textContent = text;
  }

  function refused(result, what) {
    const problem = result.body || {};
    show("error", `${what}: ${problem.detail || "the service did not answer"}.`, problem.code);
  }

  async function signedIn(pair, how) {
    session = pair;
    const me = await call("GET", "/v1/users/me");
    $("who").textContent = me.status === 200 ? `Signed in as ${me.body.data.email}.` : "";
    $("signed-out").hidden = true;
    $("signed-in").hidden = false;
    await listPasskeys();
    await listSessions();
    show("ok", `Signed in with ${how}.`, "SIGNED_IN");
  }

  async function listSessions() {
    const result = await call("GET", "/v1/users/me/sessions");
    const list = $("sessions");
    list.replaceChildren();
    if (result.status !== 200) return refused(result, "Your sessions could not be listed");
    for (const each of result.body.data.sessions) {
      const item = document.createElement("li");
      item.dataset.id = each.id;
      item.dataset.current = String(each.current);
      const where = `${each.user_agent || "An unknown browser"}, ${each.address || "an unknown network"}`;
      item.textContent = `${where}: signed in ${each.created_at}, last used ${each.last_used_at} `;
      if (each.current) {
        item.append("(this session)");
      } else {
        const end = document.createElement("button");
        end.type = "button";
        end.textContent = "End this session";
        end.addEventListener("click", () => endSession(each.id));
        item.append(end);
      }
      list.append(item);
    }
  }

  async function endSession(id) {
    const result = await call("DELETE", `/v1/users/me/sessions/${id}`);
    if (result.status !== 204) return refused(result, "The session was not ended");
    // every access token of the account issued until now is revoked, this one too: refresh
    const renewed = await call("POST", "/v1/auth/refresh", { refresh_token: session.refresh_token });
    if (renewed.status !== 200) return refused(renewed, "The session was ended; this one could not go on");
    session = renewed.body.data;
    await listSessions();
    show("ok", "Session ended.", "SESSION_ENDED");
  }

  async function listPasskeys() {
    const result = await call("GET", "/v1/users/me/passkeys");
    const list = $("passkeys");
    list.replaceChildren();
    if (result.status !== 200) return refused(result, "Your passkeys could not be listed");
    for (const passkey of result.body.data) {
      const item = document.createElement("li");
      item.dataset.id = passkey.id;
      const used = passkey.last_used_at ? `last used ${passkey.last_used_at}` : "never used";
      item.textContent = `${passkey.name} (${used}) `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = `Remove ${passkey.name}`;
      remove.addEventListener("click", () => removePasskey(passkey.id));
      item.append(remove);
      list.append(item);
    }
  }

  async function removePasskey(id) {
    const result = await call("DELETE", `/v1/users/me/passkeys/${id}`);
    if (result.status !== 204) return refused(result, "The passkey was not removed");
    show("ok", "Passkey removed.", "PASSKEY_REMOVED");
    await listPasskeys();
  }

  async function addPasskey() {
    const options = await call("POST", "/v1/users/me/passkeys/options");
    if (options.status !== 200) return refused(options, "No passkey can be added now");
    let credential;
    try {
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options.body.data.public_key);
      credential = await navigator.credentials.create({ publicKey: publicKey });
    } catch (err) {
      return show("error", "The browser made no passkey.", "CANCELLED");
    }
    const name = $("passkey-name").value.trim() || "Passkey";
    const result = await call("POST", "/v1/users/me/passkeys", { credential: credential.toJSON(), name: name });
    if (result.status !== 201) return refused(result, "The passkey was not added");
    show("ok", `Passkey "${result.body.data.name}" added.`, "PASSKEY_ADDED");
    await listPasskeys();
  }

  async function passkeySignIn() {
    const options = await call("POST", "/v1/auth/passkey/options");
    if (options.status !== 200) return refused(options, "Passkey sign-in is not possible now");
    let credential;
    try {
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.body.data.public_key);
      credential = await navigator.credentials.get({ publicKey: publicKey });
    } catch (err) {
      return show("error", "The browser gave no passkey.", "CANCELLED");
    }
    const result = await call("POST", "/v1/auth/passkey/login", { credential: credential.toJSON() });
    if (result.status !== 200) return refused(result, "Not signed in");
    await signedIn(result.body.data, "a passkey");
  }

  async function passwordSignIn(event) {
    event.preventDefault();
    const body = { email: $("email").value.trim(), password: $("password").value };
    const result = await call("POST", "/v1/auth/login", body);
    $("password").value = "";
    if (result.status !== 200) return refused(result, "Not signed in");
    await signedIn(result.body.data, "your password");
  }

  async function signOut() {
    const result = await call("POST", "/v1/auth/logout", { refresh_token: session.refresh_token });
    session = null;
    $("signed-in").hidden = true;
    $("signed-out").hidden = false;
    if (result.status !== 204) return refused(result, "Signed out here; the service said");
    show("ok", "Signed out.", "SIGNED_OUT");
  }

  $("sign-in-form").addEventListener("submit", passwordSignIn);
  $("passkey-sign-in").addEventListener("click", passkeySignIn);
  $("add-passkey").addEventListener("click", addPasskey);
  $("sign-out").addEventListener("click", signOut);
})();
