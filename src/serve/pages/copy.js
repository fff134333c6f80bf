// A Copy button beside each feed link (a[data-copy]): one click puts the feed's URL on the
// clipboard. Without this script the links are there to open or to copy as links.
"use strict";
for (const link of document.querySelectorAll("a[data-copy]")) {
  if (!navigator.clipboard) break;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.title = "Copy " + link.dataset.copy;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(link.dataset.copy);
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  link.after(button);
}
