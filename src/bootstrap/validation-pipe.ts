import { BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';

/**
 * The one ValidationPipe of every DTO: unknown fields refused, every problem reported at once as
 * "field: problem" strings (the `details` of validation_failed).
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => new BadRequestException(validationMessages(errors)),
  });
}

/**
 * One message per problem, nested fields named by their path (`entries.1.cidr ...`). A field that
 * is absent gets one message saying it is required, instead of every rule it fails for lack of a
 * value ("email must be shorter than 320 characters", "email must be an email"): optional fields
 * never get here empty (IsOptional / ValidateIf skip them), so an empty value means a missing one.
 */
export function validationMessages(errors: readonly ValidationError[], parentPath = ''): string[] {
  const messages: string[] = [];
  for (const error of errors) {
    const path = parentPath ? `${parentPath}.${error.property}` : error.property;
    const constraints = Object.values(error.constraints ?? {});
    if (constraints.length > 0) {
      if (error.value === undefined || error.value === null) messages.push(`${path} is required`);
      else messages.push(...constraints.map((message) => (parentPath ? `${parentPath}.${message}` : message)));
    }
    if (error.children?.length) messages.push(...validationMessages(error.children, path));
  }
  return messages;
}
