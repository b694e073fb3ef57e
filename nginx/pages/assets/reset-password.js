// /reset-password#token=...: a new password, twice, then POST /v1/auth/password-reset/confirm.
"use strict";

(function () {
  const A = window.FixupAccount;
  const token = A.takeToken();
  const status = document.getElementById("status");
  const form = document.getElementById("reset-form");
  const password = document.getElementById("password");
  const confirm = document.getElementById("confirm");
  const renew = () => A.offerNewLink(
    "/v1/auth/password-reset",
    "If an account uses this address, a new reset mail is on its way."
  );

  function refuse(message) {
    form.hidden = true;
    A.say(status, "error", message.text, message.code);
    renew();
  }

  if (!token) {
    refuse({ code: "LINK_INVALID", text: "This link is not valid: it carries no token." });
    return;
  }

  function checkFields() {
    const length = A.codePoints(password.value);
    let okPassword = A.fieldError(password, "");
    let okConfirm = A.fieldError(confirm, "");
    if (length < A.PASSWORD_MIN) {
      okPassword = A.fieldError(password, `Too short: ${length} characters, at least ${A.PASSWORD_MIN} are needed.`);
    } else if (length > A.PASSWORD_MAX) {
      okPassword = A.fieldError(password, `Too long: ${length} characters, at most ${A.PASSWORD_MAX} are allowed.`);
    }
    if (okPassword && confirm.value !== password.value) {
      okConfirm = A.fieldError(confirm, "The two passwords are not the same.");
    }
    if (!okPassword) password.focus();
    else if (!okConfirm) confirm.focus();
    return okPassword && okConfirm;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!checkFields()) return;
    const button = form.querySelector("button");
    button.disabled = true;
    A.say(status, "working", "Changing the password…", "");
    const result = await A.post("/v1/auth/password-reset/confirm", {
      token: token,
      new_password: password.value,
    });
    button.disabled = false;
    if (result.status === 204) {
      form.hidden = true;
      password.value = "";
      confirm.value = "";
      A.say(status, "ok", "Password changed — every other session was signed out. You can sign in with the new password.", "CHANGED");
      return;
    }
    const message = A.problemMessage(result);
    const passwordProblem = result.problem && result.problem.errors &&
      result.problem.errors.find((e) => e.field === "new_password");
    if (message.code === "VALIDATION_ERROR" && passwordProblem) {
      A.say(status, "error", "The password was refused.", message.code);
      A.fieldError(password, passwordProblem.message);
      password.focus();
      return;
    }
    if (message.code in { LINK_USED: 1, LINK_EXPIRED: 1, LINK_INVALID: 1 }) {
      refuse(message);
      return;
    }
    A.say(status, "error", message.text, message.code);
  });
})();
