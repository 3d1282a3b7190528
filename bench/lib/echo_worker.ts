/**
 * A worker that answers every message with itself: the floor of any call from the main thread to a
 * worker (the read benchmark's baseline for one call at a time).
 */
self.onmessage = (event: MessageEvent) => self.postMessage(event.data);
