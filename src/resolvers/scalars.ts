/** Shared scalars: JSON values and ISO date-times (from graphql-scalars). */
export { JSONResolver as JSONScalar, DateTimeISOResolver as DateTimeScalar } from 'graphql-scalars';
