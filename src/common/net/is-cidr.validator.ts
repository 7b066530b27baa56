import { ValidationOptions, registerDecorator } from 'class-validator';
import { isValidCidr } from './cidr';

/** An IPv4 or IPv6 CIDR (or a bare address). Used by config and admin DTOs alike. */
export function IsCidr(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isCidr',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: `$property must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or 2001:db8::/32`, ...options },
      validator: { validate: (value: unknown) => typeof value === 'string' && isValidCidr(value) },
    });
}
