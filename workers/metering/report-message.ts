/**
 * The one usage-queue message that is not usage: it asks the consumer to go on with a billing
 * report that ran out of its invocation's budget (see `reportAndChain` in stripe-reporter.ts). A leaf
 * module, so the queue's type in env.ts can name it without importing the reporter.
 */
export const REPORT_MESSAGE = { report: "billing_outbox" } as const;
export type ReportMessage = typeof REPORT_MESSAGE;

export function isReportMessage(body: unknown): body is ReportMessage {
  return (
    typeof body === "object" && body !== null && (body as { report?: unknown }).report === "billing_outbox"
  );
}
