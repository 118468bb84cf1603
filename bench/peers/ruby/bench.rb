# Ruby Resque bench driver.
#
#   ruby -I$INTEROP_RUBY_RESQUE/lib bench.rb enqueue N QUEUE   one by one with Resque.enqueue_to; prints {"seconds": s}
#   ruby -I$INTEROP_RUBY_RESQUE/lib bench.rb work QUEUE INTERVAL
#        Resque::Worker#work(INTERVAL) (0 = drain, then exit); FORK_PER_JOB=false disables the fork per job.
# Env: BENCH_REDIS=host:port. Jobs: Noop(i), Sleep(seconds), Stamp() -> RPUSH resque:bench:stamps <unix s>.
require 'json'
require 'logger'
require 'resque'

class Noop
  def self.perform(*_args); end
end

class Sleep
  def self.perform(seconds)
    sleep(Float(seconds))
  end
end

class Stamp
  def self.perform(*_args)
    t = Process.clock_gettime(Process::CLOCK_REALTIME)
    Resque.redis.rpush('bench:stamps', format('%.6f', t))
  end
end

Resque.redis = ENV.fetch('BENCH_REDIS', '127.0.0.1:6379')
Resque.logger.level = Logger::WARN

command, *args = ARGV
case command
when 'enqueue'
  n = Integer(args[0])
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  n.times { |i| Resque.enqueue_to(args[1], Noop, i) }
  puts JSON.generate('seconds' => Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0)
when 'work'
  worker = Resque::Worker.new(args[0])
  worker.prepare
  worker.work(Float(args[1] || '5'))
else
  warn "unknown command #{command}"
  exit 2
end
