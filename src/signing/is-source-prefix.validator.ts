import { ValidationOptions, registerDecorator } from 'class-validator';
import { parseSourcePrefix } from './source-policy';

/**
 * An allowed-source prefix exactly as the sandbox reads it (`https://host[:port]/path/`): checked
 * when an admin writes it, so an entry that could never match (userinfo, odd schemes, bad hosts)
 * is refused with 400 instead of being stored and silently ignored.
 */
export function IsSourcePrefix(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isSourcePrefix',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: (args) => `${args.property} entry "${String(args.value)}" is not a source prefix like https://cdn.example.com/images/`, ...options },
      validator: {
        validate(value: unknown) {
          if (typeof value !== 'string') return false;
          try {
            parseSourcePrefix(value);
            return true;
          } catch {
            return false;
          }
        },
      },
    });
}
