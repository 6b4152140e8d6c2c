/** The ES module build of @mrleebo/prisma-ast has the same API as its main entry. */
declare module '@mrleebo/prisma-ast/dist/prisma-ast.esm.js' {
  export * from '@mrleebo/prisma-ast';
}
