import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, Matches } from 'class-validator';

export class UsagePeriodDto {
  @ApiProperty({ description: 'First instant of the calendar month (UTC).', example: '2026-11-01T00:00:00.000Z' })
  start: string;
  @ApiProperty({ description: 'First instant of the next month (UTC): when the monthly quotas reset.', example: '2026-12-01T00:00:00.000Z' })
  end: string;
}

export class UsageQuotaDto {
  @ApiProperty({ description: 'The quota (plan value or per-tenant override).', example: 100000 })
  limit: number;
  @ApiProperty({ description: 'Used in the period.', example: 4217 })
  used: number;
  @ApiProperty({ description: 'limit − used, never negative.', example: 95783 })
  remaining: number;
}

export class DailyUsageQuotaDto extends UsageQuotaDto {
  @ApiProperty({ description: 'When the daily quota resets (next UTC midnight).', example: '2026-11-23T00:00:00.000Z' })
  resetsAt: string;
}

export class UsageSeriesPointDto {
  @ApiProperty({ description: 'The UTC day.', example: '2026-11-22' })
  date: string;
  @ApiProperty({ description: 'Requests counted that day.', example: 1250 })
  requests: number;
  @ApiProperty({ description: 'Request + response bytes transferred that day.', example: 24117248 })
  bandwidthBytes: number;
  @ApiProperty({ description: 'Requests the image backend rendered (not answered from the gateway cache).', example: 310 })
  renders: number;
}

export class TenantUsageResponseDto {
  @ApiProperty({ type: UsagePeriodDto, description: 'The current calendar month (UTC).' })
  period: UsagePeriodDto;
  @ApiProperty({ type: UsageQuotaDto, description: 'Requests this month (monthlyRequests).' })
  requests: UsageQuotaDto;
  @ApiProperty({ type: UsageQuotaDto, description: 'Request + response bytes transferred this month (monthlyBandwidthBytes).' })
  bandwidthBytes: UsageQuotaDto;
  @ApiProperty({ type: UsageQuotaDto, description: 'Bytes of stored uploads (storageBytes).' })
  storageBytes: UsageQuotaDto;
  @ApiPropertyOptional({ type: DailyUsageQuotaDto, description: 'Requests today (dailyRequests), when the tenant has a daily quota.' })
  dailyRequests?: DailyUsageQuotaDto;
  @ApiPropertyOptional({
    type: [UsageSeriesPointDto],
    description:
      'With granularity=day: one point per UTC day of [from, to] (days without usage are zeros), oldest first. ' +
      "Today's point holds this instance's counts at once and the other instances' within their flush interval.",
    example: [
      { date: '2026-11-21', requests: 980, bandwidthBytes: 20971520, renders: 240 },
      { date: '2026-11-22', requests: 1250, bandwidthBytes: 24117248, renders: 310 },
    ],
  })
  series?: UsageSeriesPointDto[];
}

const DAY = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;

export class UsageRangeQueryDto {
  @ApiPropertyOptional({ description: 'First day (UTC, inclusive). Default: the first day of the current month.', example: '2026-11-01' })
  @IsOptional()
  @Matches(DAY, { message: 'from must be a date YYYY-MM-DD' })
  from?: string;

  @ApiPropertyOptional({ description: 'Last day (UTC, inclusive). Default: today. The range spans at most 366 days.', example: '2026-11-30' })
  @IsOptional()
  @Matches(DAY, { message: 'to must be a date YYYY-MM-DD' })
  to?: string;
}

export class UsageSeriesQueryDto extends UsageRangeQueryDto {
  @ApiPropertyOptional({ description: 'Adds `series`, one point per day of [from, to] (default: this month up to today).', enum: ['day'], example: 'day' })
  @IsOptional()
  @IsIn(['day'], { message: 'granularity must be day' })
  granularity?: 'day';
}

export class UsageTotalsDto {
  @ApiProperty({ description: 'Requests counted.', example: 4217 })
  requests: number;
  @ApiProperty({ description: 'Request body bytes received from clients.', example: 1024 })
  bytesIn: number;
  @ApiProperty({ description: 'Response body bytes sent to clients.', example: 73400320 })
  bytesOut: number;
}

export class UsageDayDto extends UsageTotalsDto {
  @ApiProperty({ description: 'The UTC day.', example: '2026-11-22' })
  day: string;
  @ApiProperty({ description: 'Requests the image backend rendered (not answered from the gateway cache).', example: 310 })
  renders: number;
  @ApiProperty({ description: 'Stored bytes when the day was last flushed.', example: 52428800 })
  storageBytes: number;
}

/** The tenant's current period (the same shape the tenant reads at /api/v1/usage), plus the range asked for. */
export class TenantUsageReportDto extends TenantUsageResponseDto {
  @ApiProperty({ description: 'Tenant id.', example: '7d9f2c1e-3b4a-4c5d-8e6f-0a1b2c3d4e5f' })
  tenantId: string;
  @ApiProperty({ description: 'First day of the range.', example: '2026-11-01' })
  from: string;
  @ApiProperty({ description: 'Last day of the range.', example: '2026-11-30' })
  to: string;
  @ApiProperty({ type: [UsageDayDto], description: 'One row per day with usage, oldest first; days without usage are absent.' })
  days: UsageDayDto[];
  @ApiProperty({ type: UsageTotalsDto, description: 'Sums over the range.' })
  totals: UsageTotalsDto;
}

export class UsageResetResponseDto {
  @ApiProperty({ description: 'Tenant id.', example: '7d9f2c1e-3b4a-4c5d-8e6f-0a1b2c3d4e5f' })
  tenantId: string;
  @ApiProperty({ type: UsagePeriodDto, description: 'The month that was reset.' })
  period: UsagePeriodDto;
  @ApiProperty({ type: UsageTotalsDto, description: 'What the month held before the reset.' })
  before: UsageTotalsDto;
}
