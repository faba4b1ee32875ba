// Login: the node's RPC token, kept in this tab's sessionStorage only.

import { relogin, setToken } from "../app.js";
import { h, section } from "../dom.js";

export async function render(root) {
  const input = h("input", { type: "password", name: "token", id: "token", autocomplete: "current-password", size: 40 });
  const msg = h("p", { class: "muted" }, "This node asks for its RPC token before it shows any data.");
  const form = h(
    "form",
    { class: "login", id: "login-form" },
    h("label", { for: "token" }, "Token "),
    input,
    h("button", { type: "submit" }, "Open"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    try {
      await relogin();
      location.hash = sessionStorage.getItem("godown.after") || "#/overview";
    } catch (err) {
      msg.textContent = "That token was not accepted.";
      msg.className = "error";
    }
  });
  root.append(h("h1", {}, "Log in"), section("Node token", msg, form));
  input.focus();
}
