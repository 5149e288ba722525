// The Connect page's Copy and Run buttons (a file, not inline script: the
// Content-Security-Policy forbids that). Answers are shown as text, never as HTML.
(function () {
  "use strict";
  document.querySelectorAll(".connect .copy").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copy);
      const text = target.value !== undefined ? target.value : target.textContent;
      navigator.clipboard.writeText(text.trim()).then(() => {
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = "Copy"; }, 1500);
      });
    });
  });
  document.querySelectorAll(".connect .run").forEach((button) => {
    button.addEventListener("click", async () => {
      const output = document.getElementById(button.dataset.output);
      const key = document.getElementById("run-key").value.trim();
      output.hidden = false;
      if (!key) { output.textContent = "Paste a key above first."; return; }
      const header = JSON.parse(document.getElementById("auth-header").textContent);
      const headers = header === "Authorization" ? { "Authorization": "Bearer " + key } : { [header]: key };
      output.textContent = "Running…";
      try {
        const response = await fetch(button.dataset.url, { headers, credentials: "omit" });
        const text = await response.text();
        let body = text;
        try { body = JSON.stringify(JSON.parse(text), null, 2); } catch (error) { /* not JSON */ }
        output.textContent = "HTTP " + response.status + "\n" + body;
      } catch (error) {
        output.textContent = "The call failed: " + error;
      }
    });
  });
})();
