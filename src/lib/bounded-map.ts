/**
 * Sets `key` in an isolate-lifetime cache held to `max` entries: the key moves to the newest place, and when the
 * map is full the oldest entry (the first in insertion order) makes room.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
	map.delete(key);
	if (map.size >= max) {
		const oldest = map.keys().next();
		if (!oldest.done) map.delete(oldest.value);
	}
	map.set(key, value);
}
