// Firebreak incident console: the action forms. Each posts its fields as JSON with the
// Airflow session cookie (same origin), shows the answer, and reloads the page so the
// timeline shows what was recorded. No other script runs on these pages.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const result = document.querySelector("[data-testid=action-result]");
  for (const form of document.querySelectorAll("form.action")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      for (const [key, value] of new FormData(form).entries()) {
        body[key] = key === "map_index" ? Number(value) : String(value);
      }
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const response = await fetch(form.dataset.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          result.textContent = `Refused (${response.status}): ${answer.error || answer.detail || "see the server log"}`;
          result.className = "result error";
          return;
        }
        result.textContent = "Done: recorded on the timeline.";
        result.className = "result ok";
        window.location.reload();
      } catch (error) {
        result.textContent = `Failed: ${error}`;
        result.className = "result error";
      } finally {
        button.disabled = false;
      }
    });
  }
});
