/** A RestRequest as the route machinery builds it, for unit tests of the mapping modules. */
import type { RestRequest } from '../../../src/rest-compat/rest-route.ts';

export function restRequest(r: Partial<RestRequest> = {}): RestRequest {
  return {
    method: 'GET', path: '/', url: '/', params: {}, query: {}, body: undefined, input: {}, headers: {},
    local: { address: '127.0.0.1', port: 8190 }, ...r,
  };
}
