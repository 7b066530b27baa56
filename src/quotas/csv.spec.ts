import { csvField } from './csv';

describe('csvField', () => {
  it('leaves plain fields alone and quotes the ones with separators, quotes or line breaks', () => {
    expect(csvField('Acme Photos')).toBe('Acme Photos');
    expect(csvField('Acme, Inc.')).toBe('"Acme, Inc."');
    expect(csvField('The "Best" Pics')).toBe('"The ""Best"" Pics"');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
  });

  it('defuses fields a spreadsheet would run as a formula', () => {
    expect(csvField('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvField('+1')).toBe("'+1");
    expect(csvField('@sum')).toBe("'@sum");
  });
});
