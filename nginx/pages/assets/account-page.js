// The signed-in account page (nginx/pages/account.html; docs/api.md "The account pages"):
// sign in with a password (and a code of the authenticator app, or a recovery code, when
// the account has one) or a passkey, list, add and remove one's passkeys, see where one is
// signed in and end another session, set up the authenticator app (its QR code, drawn by
// the service) or turn it off, sign out. An action that needs a recent sign-in asks for
// the password, a code or a passkey (POST /v1/auth/reauth), then goes on.
// The tokens, a sign-in's challenge and the recovery codes are kept in memory only (no
// storage, no cookie read); the passkey ceremonies are the browser's own (WebAuthn Level
// 3's JSON forms of the options and credentials).
"use strict";

(function () {
  const API = "/api/users";
  const $ = (id) => document.getElementById(id);
  let session = null; // {access_token, refresh_token}
  let challenge = null; // of a sign-in that owes a code
  let recoveryCodes = []; // of an enrolment, until it is confirmed
  let pending = null; // the action a re-authentication lets through

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
    await showSecondFactor();
    show("ok", `Signed in with ${how}.`, "SIGNED_IN");
  }

  // true when `result` is a refusal for want of a recent sign-in: the form asks for one,
  // and `retry` runs once it is given
  function needsReauth(result, retry) {
    if (result.status !== 403 || !result.body || result.body.code !== "REAUTHENTICATION_REQUIRED") return false;
    pending = retry;
    $("reauth-form").hidden = false;
    $("reauth-password").focus();
    show("error", "Confirm it is you first: your password, a code of your app or a passkey.", "REAUTHENTICATION_REQUIRED");
    return true;
  }

  async function reauthenticate(body) {
    const result = await call("POST", "/v1/auth/reauth", body);
    $("reauth-password").value = "";
    $("reauth-code").value = "";
    if (result.status !== 204) return refused(result, "Not confirmed");
    $("reauth-form").hidden = true;
    const retry = pending;
    pending = null;
    show("ok", "Confirmed.", "REAUTHENTICATED");
    if (retry) await retry();
  }

  // each way of confirming says so at once (the status no longer shows the refusal)
  async function reauthByForm(event) {
    event.preventDefault();
    show("ok", "Confirming…", "REAUTHENTICATING");
    const code = $("reauth-code").value.trim();
    await reauthenticate(code ? { code: code } : { password: $("reauth-password").value });
  }

  async function reauthByPasskey() {
    show("ok", "Confirming…", "REAUTHENTICATING");
    const credential = await passkeyAssertion();
    if (credential) await reauthenticate({ credential: credential });
  }

  async function showSecondFactor() {
    const result = await call("GET", "/v1/users/me/second-factor");
    if (result.status !== 200) return refused(result, "Your authenticator app could not be read");
    const factor = result.body.data;
    $("totp-state").textContent = factor.totp
      ? `On: a password sign-in asks for a code (${factor.recovery_codes_left} recovery codes left).`
      : "Off: your password alone signs you in.";
    $("totp-enrol").hidden = factor.totp;
    $("totp-remove").hidden = !factor.totp;
  }

  async function enrolTotp() {
    const result = await call("POST", "/v1/users/me/second-factor/totp");
    if (needsReauth(result, enrolTotp)) return;
    if (result.status !== 201) return refused(result, "No authenticator app can be set up now");
    const enrolment = result.body.data;
    // the service's SVG, parsed inert (no script runs in a parsed document) and moved in
    const svg = new DOMParser().parseFromString(enrolment.qr_svg, "text/html").querySelector("svg");
    $("totp-qr").replaceChildren(svg ? document.importNode(svg, true) : "");
    $("totp-secret").textContent = enrolment.secret;
    $("totp-uri").href = enrolment.otpauth_uri;
    recoveryCodes = enrolment.recovery_codes;
    $("totp-enrol").hidden = true;
    $("totp-setup").hidden = false;
    $("totp-code").focus();
    show("ok", "Scan the QR code with your app, then enter the code it shows.", "TOTP_STARTED");
  }

  async function confirmTotp(event) {
    if (event) event.preventDefault();
    const result = await call("POST", "/v1/users/me/second-factor/totp/confirm", { code: $("totp-code").value.trim() });
    if (needsReauth(result, confirmTotp)) return;
    if (result.status !== 204) return refused(result, "The authenticator app was not turned on");
    $("totp-code").value = "";
    closeSetup();
    // shown this once, from memory: the service keeps only their hashes
    $("recovery-codes").replaceChildren(
      ...recoveryCodes.map((code) => Object.assign(document.createElement("li"), { textContent: code })),
    );
    recoveryCodes = [];
    $("recovery").hidden = false;
    await showSecondFactor();
    show("ok", "Authenticator app turned on. Save your recovery codes now.", "TOTP_ON");
  }

  function closeSetup() {
    $("totp-setup").hidden = true;
    $("totp-qr").replaceChildren();
    $("totp-secret").textContent = "";
    $("totp-uri").href = "#";
  }

  function hideRecoveryCodes() {
    $("recovery-codes").replaceChildren();
    $("recovery").hidden = true;
    show("ok", "Your recovery codes are no longer shown.", "RECOVERY_CODES_HIDDEN");
  }

  async function removeTotp() {
    const result = await call("DELETE", "/v1/users/me/second-factor");
    if (needsReauth(result, removeTotp)) return;
    if (result.status !== 204) return refused(result, "The authenticator app was not turned off");
    await showSecondFactor();
    show("ok", "Authenticator app turned off.", "TOTP_OFF");
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
    if (needsReauth(result, () => endSession(id))) return;
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
    if (needsReauth(result, () => removePasskey(id))) return;
    if (result.status !== 204) return refused(result, "The passkey was not removed");
    show("ok", "Passkey removed.", "PASSKEY_REMOVED");
    await listPasskeys();
  }

  async function addPasskey() {
    const options = await call("POST", "/v1/users/me/passkeys/options");
    if (needsReauth(options, addPasskey)) return;
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

  // an assertion of a passkey this browser holds for the site, or null (the status says why)
  async function passkeyAssertion() {
    const options = await call("POST", "/v1/auth/passkey/options");
    if (options.status !== 200) {
      refused(options, "No passkey can be asked for now");
      return null;
    }
    try {
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.body.data.public_key);
      return (await navigator.credentials.get({ publicKey: publicKey })).toJSON();
    } catch (err) {
      show("error", "The browser gave no passkey.", "CANCELLED");
      return null;
    }
  }

  async function passkeySignIn() {
    const credential = await passkeyAssertion();
    if (!credential) return;
    const result = await call("POST", "/v1/auth/passkey/login", { credential: credential });
    if (result.status !== 200) return refused(result, "Not signed in");
    await signedIn(result.body.data, "a passkey");
  }

  async function passwordSignIn(event) {
    event.preventDefault();
    const body = { email: $("email").value.trim(), password: $("password").value };
    const result = await call("POST", "/v1/auth/login", body);
    $("password").value = "";
    if (result.status === 401 && result.body && result.body.code === "SECOND_FACTOR_REQUIRED") {
      return askForCode(result.body);
    }
    if (result.status !== 200) return refused(result, "Not signed in");
    await signedIn(result.body.data, "your password");
  }

  function askForCode(problem) {
    if (problem.step !== "totp") {
      return show("error", "This account must set up an authenticator app to sign in: "
        + "ask for it through the API (POST /v1/auth/second-factor/enrol).", "ENROL_REQUIRED");
    }
    challenge = problem.challenge;
    $("sign-in-form").hidden = true;
    $("second-factor-form").hidden = false;
    $("sign-in-code").focus();
    show("ok", "Enter the code your authenticator app shows (or a recovery code).", "SECOND_FACTOR");
  }

  function endChallenge() {
    challenge = null;
    $("second-factor-form").hidden = true;
    $("sign-in-form").hidden = false;
  }

  async function secondFactorSignIn(event) {
    event.preventDefault();
    const value = $("sign-in-code").value.trim();
    const body = /^[0-9]{6}$/.test(value)
      ? { challenge: challenge, code: value }
      : { challenge: challenge, recovery_code: value };
    const result = await call("POST", "/v1/auth/second-factor", body);
    $("sign-in-code").value = "";
    if (result.status === 401) endChallenge(); // used up, expired or five wrong codes: again
    if (result.status !== 200) return refused(result, "Not signed in");
    endChallenge();
    await signedIn(result.body.data, body.code ? "your password and a code" : "your password and a recovery code");
  }

  async function signOut() {
    const result = await call("POST", "/v1/auth/logout", { refresh_token: session.refresh_token });
    session = null;
    pending = null;
    recoveryCodes = [];
    closeSetup();
    $("recovery-codes").replaceChildren();
    for (const id of ["recovery", "reauth-form"]) $(id).hidden = true;
    $("signed-in").hidden = true;
    $("signed-out").hidden = false;
    if (result.status !== 204) return refused(result, "Signed out here; the service said");
    show("ok", "Signed out.", "SIGNED_OUT");
  }

  $("sign-in-form").addEventListener("submit", passwordSignIn);
  $("passkey-sign-in").addEventListener("click", passkeySignIn);
  $("add-passkey").addEventListener("click", addPasskey);
  $("sign-out").addEventListener("click", signOut);
  $("second-factor-form").addEventListener("submit", secondFactorSignIn);
  $("totp-enrol").addEventListener("click", enrolTotp);
  $("totp-confirm-form").addEventListener("submit", confirmTotp);
  $("recovery-saved").addEventListener("click", hideRecoveryCodes);
  $("totp-remove").addEventListener("click", removeTotp);
  $("reauth-form").addEventListener("submit", reauthByForm);
  $("reauth-passkey").addEventListener("click", reauthByPasskey);
})();
