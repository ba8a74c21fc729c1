/**
 * Counts bytes flowing through a stream without buffering it, for usage metering.
 * `done` settles when the stream ends, errors or is cancelled (a client hanging up mid-body
 * still gets its usage recorded).
 */
export interface CountedStream {
  readable: ReadableStream<Uint8Array>;
  /** Resolves with the number of bytes that passed, however the stream ended. */
  done: Promise<number>;
  /** True if more than `limit` bytes were offered (the stream is then errored). */
  readonly exceeded: boolean;
}

export function countBytes(
  source: ReadableStream<Uint8Array>,
  limit = Number.POSITIVE_INFINITY,
): CountedStream {
  let bytes = 0;
  let exceeded = false;
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      bytes += chunk.byteLength;
      if (bytes > limit) {
        exceeded = true;
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
  return {
    readable,
    done,
    get exceeded() {
      return exceeded;
    },
  };
}
