/**
 * Case (b): the runtime's floor. A Worker with no features: every request is fetched from the same
 * origin with the same method, path, query, headers and body, and the origin's response is returned
 * as is. Same runtime, same loader and same sockets as the gateway, so gateway ÷ this isolates the
 * cost of the gateway's own work (auth, admission, claims, metering).
 */
export default {
  /** @param {Request} request @param {{ ORIGIN_URL: string }} env */
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(`${env.ORIGIN_URL}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
