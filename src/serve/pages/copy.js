// A Copy button beside each feed URL. Without this script the URLs are selectable text.
"use strict";
for (const input of document.querySelectorAll("input.feed-url")) {
  if (!navigator.clipboard) break;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(input.value);
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  input.after(button);
}
