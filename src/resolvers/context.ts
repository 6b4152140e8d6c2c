import type { Principal } from '../auth/roles.ts';
import type { Services } from '../services/services.ts';

export interface GraphQLContext {
  principal: Principal;
  services: Services;
  /**
   * Set for operations the REST compatibility layer runs: their documents come
   * from Tributary's own route tables (the caller only fills validated
   * parameters), so the complexity limit, which guards against arbitrary
   * caller documents, is not computed for them.
   */
  restCompat?: boolean;
}
