// Live classification progress of a sample: polls GET /api/v1/samples/<id> (session cookie) once a second.
export function watchClassification(apiUrl, onUpdate, { interval = 1000 } = {}) {
  let stopped = false;
  let failures = 0;
  async function tick() {
    if (stopped) return;
    try {
      const response = await fetch(apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const sample = await response.json();
      failures = 0;
      if (onUpdate(sample) === false) return;
    } catch (error) {
      failures += 1;
      if (failures >= 10) {
        onUpdate(null, error);
        return;
      }
    }
    setTimeout(tick, interval);
  }
  tick();
  return () => {
    stopped = true;
  };
}

export function progressText(sample) {
  const counts = sample.counts;
  const done = counts.classified + counts.failed;
  const failed = counts.failed ? `, ${counts.failed} failed` : "";
  return `${done} of ${counts.total} cells done (${counts.classified} classified${failed}; ${counts.queued} waiting, ${counts.processing} being classified).`;
}

// On the sample page: update the counts, then reload once the sample is complete to show the results.
const panel = document.querySelector("[data-sample-progress]");
if (panel) {
  const bar = panel.querySelector("progress");
  const text = panel.querySelector("#progress-text");
  watchClassification(panel.dataset.apiUrl, (sample, error) => {
    if (!sample) {
      text.textContent = `Progress cannot be fetched (${error.message}); reload the page to see it.`;
      return false;
    }
    bar.max = sample.counts.total || 1;
    bar.value = sample.counts.classified + sample.counts.failed;
    text.textContent = progressText(sample);
    for (const [name, value] of Object.entries({
      classified: sample.counts.classified,
      total: sample.counts.total,
      failed: sample.counts.failed,
      parasitized: sample.parasitized,
      uninfected: sample.uninfected,
      uncertain: sample.uncertain,
    })) {
      const element = document.querySelector(`[data-count="${name}"]`);
      if (element) element.textContent = String(value);
    }
    if (sample.status !== "processing") {
      window.location.reload();
      return false;
    }
    return true;
  });
}
