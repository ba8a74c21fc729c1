/**
 * Counts bytes flowing through a stream without buffering it, for usage metering.
 * `done` settles when the stream ends, errors or is cancelled (a client hanging up mid-body
 * still gets its usage recorded).
 */
export interface CountedStream {
  readable: ReadableStream<Uint8Array>;
  /** Resolves with the number of bytes that passed, however the stream ended. */
  done: Promise<number>;
  /** Aborted as soon as more than `limit` bytes are offered (the stream is then errored): hand it to
   * the fetch that consumes the stream, so an oversized upload is aborted, never sent cut short. */
  overLimit: AbortSignal;
}

export function countBytes(
  source: ReadableStream<Uint8Array>,
  limit = Number.POSITIVE_INFINITY,
): CountedStream {
  let bytes = 0;
  const overLimit = new AbortController();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      if (bytes > limit) {
        overLimit.abort();
        controller.error(new Error("body exceeds limit"));
        return;
      }
      controller.enqueue(chunk);
    },
  });
  const done = source.pipeTo(writable).then(
    () => bytes,
    () => bytes,
  );
  return { readable, done, overLimit: overLimit.signal };
}
