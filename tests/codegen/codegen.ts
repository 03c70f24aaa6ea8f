// GraphQL Code Generator: typed documents for the example operations,
// from the committed schema. Run by tests/codegen/run.
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql',
  documents: '../../examples/operations/*.graphql',
  generates: {
    './generated/': {
      preset: 'client',
      config: {
        scalars: {
          DateTime: 'string',
          JSONObject: 'Record<string, unknown>',
        },
        enumsAsTypes: true,
        strictScalars: true,
      },
    },
  },
};

export default config;
