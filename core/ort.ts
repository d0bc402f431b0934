import ort from 'onnxruntime-node';

/**
 * onnxruntime-node, with its telemetry off. onnxruntime ≥ 1.2x on Linux
 * writes a device id and a SQLite event store under
 * ~/.cache/Microsoft/DeveloperTools/.onnxruntime when the first session
 * starts, and prints a warning where home is read-only. vtc wants neither;
 * the runtime reads ORT_DISABLE_TELEMETRY when it creates its environment (at
 * the first session, not at import), so setting it here, before any session,
 * is enough. A value the user set is kept. Every vtc module imports
 * onnxruntime through this file.
 */
if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';

export default ort;
