import { ArgumentMetadata, BadRequestException } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsArray, IsEmail, IsInt, IsOptional, IsString, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import { createValidationPipe } from './validation-pipe';

class EntryDto {
  @IsString() @MinLength(3) cidr: string;
}

class ExampleDto {
  @IsString() @MinLength(1) @MaxLength(200) name: string;
  @IsEmail() @MaxLength(320) email: string;
  @IsOptional() @IsInt() @Min(1) limit?: number;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => EntryDto) entries?: EntryDto[];
}

async function detailsOf(body: unknown): Promise<string[]> {
  const metadata: ArgumentMetadata = { type: 'body', metatype: ExampleDto };
  try {
    await createValidationPipe().transform(body, metadata);
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestException);
    return ((error as BadRequestException).getResponse() as { message: string[] }).message;
  }
  throw new Error('expected a validation failure');
}

describe('createValidationPipe', () => {
  it('says a missing required field is required, once, instead of every rule it fails', async () => {
    expect(await detailsOf({ name: 'Acme' })).toEqual(['email is required']);
    expect(await detailsOf({})).toEqual(['name is required', 'email is required']);
    expect(await detailsOf({ name: 'Acme', email: null })).toEqual(['email is required']);
  });

  it('keeps every rule a given value breaks, and names nested fields by their path', async () => {
    const details = await detailsOf({ name: '', email: 'nope', limit: 0, entries: [{ cidr: '10.0.0.0/8' }, { cidr: 'x' }, {}], bogus: 1 });
    expect(details).toEqual(
      expect.arrayContaining([
        'name must be longer than or equal to 1 characters',
        'email must be an email',
        'limit must not be less than 1',
        'entries.1.cidr must be longer than or equal to 3 characters',
        'entries.2.cidr is required',
        'property bogus should not exist',
      ]),
    );
    expect(details).toHaveLength(6);
  });

  it('passes a valid body through, transformed', async () => {
    const value = await createValidationPipe().transform({ name: 'Acme', email: 'ops@acme.example' }, { type: 'body', metatype: ExampleDto });
    expect(value).toBeInstanceOf(ExampleDto);
  });
});
