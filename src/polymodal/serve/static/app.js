"use strict";
// The search page: text, a dropped photo or sound, or both; results as cards.
(function () {
  const form = document.getElementById("search-form");
  const q = document.getElementById("q");
  const fileInput = document.getElementById("file");
  const drop = document.getElementById("drop");
  const dropLabel = document.getElementById("drop-label");
  const clearFile = document.getElementById("clear-file");
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  let chosen = null;

  function setStatus(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function choose(file) {
    chosen = file || null;
    clearFile.hidden = !chosen;
    dropLabel.textContent = "";
    if (!chosen) {
      dropLabel.innerHTML = "Drop a photo or a sound here, or <u>choose a file</u>";
      return;
    }
    if (chosen.type.startsWith("image/")) {
      const img = document.createElement("img");
      img.className = "preview";
      img.alt = "query photo";
      img.src = URL.createObjectURL(chosen);
      dropLabel.appendChild(img);
    }
    dropLabel.appendChild(document.createTextNode(chosen.name + " — add words below to change it"));
  }

  drop.addEventListener("click", (e) => { if (e.target !== clearFile) fileInput.click(); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") fileInput.click(); });
  fileInput.addEventListener("change", () => choose(fileInput.files[0]));
  clearFile.addEventListener("click", (e) => { e.stopPropagation(); fileInput.value = ""; choose(null); });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]); });

  function card(hit) {
    const el = document.createElement("article");
    el.className = "card";
    el.dataset.id = hit.id;
    el.dataset.modality = hit.modality;
    const media = document.createElement("div");
    media.className = "media";
    if (hit.thumbnail_url) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = hit.path;
      img.src = hit.thumbnail_url;
      media.appendChild(img);
    } else if (hit.modality === "audio") {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = hit.file_url;
      media.appendChild(audio);
    } else {
      const glyph = document.createElement("span");
      glyph.className = "glyph";
      glyph.textContent = hit.modality === "video" ? "▶" : "¶";
      media.appendChild(glyph);
    }
    const body = document.createElement("div");
    body.className = "body";
    const link = document.createElement("a");
    link.className = "path";
    link.href = hit.file_url;
    link.target = "_blank";
    link.textContent = hit.path;
    const meta = document.createElement("div");
    meta.className = "meta";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = hit.score.toFixed(3);
    meta.append(score, " · " + hit.modality + " · " + hit.space);
    body.append(link, meta);
    if (hit.text) {
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = hit.text;
      body.appendChild(text);
    }
    el.append(media, body);
    return el;
  }

  async function search() {
    const text = q.value.trim();
    const k = document.getElementById("k").value || "12";
    const modality = document.getElementById("modality").value;
    if (!text && !chosen) {
      setStatus("Type something or drop a photo or a sound.", true);
      results.replaceChildren();
      return;
    }
    setStatus("Searching…", false);
    let response;
    try {
      if (chosen) {
        const body = new FormData();
        body.append("file", chosen);
        if (text) body.append("text", text);
        body.append("k", k);
        if (modality) body.append("modality", modality);
        response = await fetch("/search", { method: "POST", body });
      } else {
        const params = new URLSearchParams({ q: text, k });
        if (modality) params.set("modality", modality);
        response = await fetch("/search?" + params.toString());
      }
    } catch (err) {
      setStatus("The server did not answer: " + err, true);
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      setStatus("Error " + response.status + ": " + detail, true);
      results.replaceChildren();
      return;
    }
    results.replaceChildren(...data.results.map(card));
    setStatus(data.results.length ? data.results.length + " results" : "No results.", false);
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); search(); });

  fetch("/health").then((r) => r.json()).then((h) => {
    const counts = Object.entries(h.spaces || {}).map(([s, n]) => s + ": " + n).join(", ");
    document.getElementById("health").textContent = h.root + (counts ? " — " + counts : "");
  }).catch(() => {});
})();
