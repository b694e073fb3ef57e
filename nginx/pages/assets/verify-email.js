// /verify-email#token=...: confirms the address with POST /v1/auth/verify.
"use strict";

(async function () {
  const A = window.FixupAccount;
  const token = A.takeToken();
  const status = document.getElementById("status");
  const renew = () => A.offerNewLink(
    "/v1/auth/resend-verification",
    "If an unverified account uses this address, a new verification mail is on its way."
  );
  if (!token) {
    A.say(status, "error", "This link is not valid: it carries no token.", "LINK_INVALID");
    renew();
    return;
  }
  const result = await A.post("/v1/auth/verify", { token: token });
  if (result.status === 204) {
    A.say(status, "ok", "Email verified — you can sign in now.", "VERIFIED");
    return;
  }
  const message = A.problemMessage(result);
  A.say(status, "error", message.text, message.code);
  renew();
})();
