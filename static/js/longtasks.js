// Main-thread tasks over 50 ms, as the browser reports them ('longtask' entries), kept in
// window.unrollLongTasks ({start, duration} in ms) for the page benchmark and its tests.
// A classic script in <head>, so it observes from the first script on.
(function observeLongTasks() {
  const tasks = [];
  window.unrollLongTasks = tasks;
  if (!("PerformanceObserver" in window) || !PerformanceObserver.supportedEntryTypes.includes("longtask")) return;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) tasks.push({ start: entry.startTime, duration: entry.duration });
  }).observe({ type: "longtask", buffered: true });
})();
