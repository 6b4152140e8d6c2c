/** The expression language's syntax checks, as the pipeline DSL planner (domain/pipeline-dsl.ts) takes them. */
import type { ParameterSyntax } from '../../domain/pipeline-dsl.ts';
import { RowExpression } from './expression.ts';
import { parseAggregate } from './row-transforms.ts';

export const transformSyntax: ParameterSyntax = {
  expression: (source) => { RowExpression.parse(source); },
  aggregate: (column, spec) => { parseAggregate(column, spec); },
};
