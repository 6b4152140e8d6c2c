import type { Principal } from '../auth/roles.ts';
import type { Services } from '../services/services.ts';

export interface GraphQLContext {
  principal: Principal;
  services: Services;
}
