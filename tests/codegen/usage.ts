// What a front end writes with the generated types: every outcome of
// updateUser handled, checked exhaustively by the compiler.
import type { UpdateUserMutation, UsersPageQuery, FieldErrorCode } from './generated/graphql';

type UpdateResult = UpdateUserMutation['updateUser'];

export function describe(result: UpdateResult): string {
  switch (result.__typename) {
    case 'UpdateUserSuccess':
      return `saved; version ${result.user.updatedAt}`;
    case 'UpdateConflict':
      return `changed since; retry against ${result.currentUser.updatedAt}`;
    case 'UserNotFound':
      return `no user ${result.id}`;
    case 'ValidationFailed':
      return result.fieldErrors.map((e) => `${e.field}: ${codeText(e.code)}`).join('; ');
    default: {
      const unhandled: never = result;
      return unhandled;
    }
  }
}

function codeText(code: FieldErrorCode): string {
  return code === 'TAKEN' ? 'already in use' : code.toLowerCase();
}

export function names(page: UsersPageQuery): string[] {
  return page.users.edges.map((edge) => edge.node.firstName ?? '(no name)');
}
