"use strict";
(function () {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  I18N.apply();
  document.getElementById("lang").addEventListener("click", () => {
    I18N.toggle();
    I18N.apply();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const body = {
      name: document.getElementById("name").value.trim(),
      password: document.getElementById("password").value,
    };
    let res;
    try {
      res = await fetch("/api/v1/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
    } catch (e) {
      error.textContent = I18N.t("network_error");
      return;
    }
    if (res.ok) {
      window.location.replace("/");
    } else if (res.status === 429) {
      error.textContent = I18N.t("too_many") + " (" + (res.headers.get("Retry-After") || "?") + " s)";
    } else {
      error.textContent = I18N.t("bad_login");
    }
  });
})();
